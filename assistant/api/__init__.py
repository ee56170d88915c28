"""The HTTP API face (``assistant serve``): FastAPI, laid out like vLLM's server.

    protocol.py  wire types (requests, responses, OpenAI shapes, the error body)
    serving.py   logic: calls the core, bridges its sync generators to async streams
    routes.py    HTTP only
    security.py  API keys (hashed, constant-time)
    limits.py    body size, per-key rate limit, concurrent model calls
    errors.py    the one mapping from the core's exceptions to OpenAI-shaped errors
    app.py       ``create_app``: middleware, error handlers, OpenAPI
    cli.py       ``assistant serve``
    bench.py     the load benchmark (``python -m assistant.api.bench``)
"""
