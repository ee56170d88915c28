"""Every route through TestClient: the happy paths and what a client sees."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from assistant.domain import Critique
from assistant.knowledge.models import Case

from .conftest import AUTH, ONE_PAGE_PLAN


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event, data) pairs from an SSE body; event defaults to 'message'."""
    out: list[tuple[str, str]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            out.append((event, "\n".join(data)))
    return out


def test_healthz_answers_without_auth(make_app) -> None:
    with TestClient(make_app()) as c:
        r = c.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    with TestClient(make_app()) as c:
        assert c.head("/healthz").status_code == 200  # load balancers probe with HEAD too
        assert c.head("/readyz").status_code == 200


def test_readyz_reports_loaded_advisor_without_auth(make_app) -> None:
    with TestClient(make_app()) as c:
        r = c.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"]["corpus"]["cases"] >= 15
    assert body["checks"]["model"]["backend"] == "offline"


def test_critique_json_is_the_contract_and_quotes_the_plan(client: TestClient) -> None:
    r = client.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN})
    assert r.status_code == 200, r.text
    critique = Critique.model_validate(r.json())
    assert critique.schema_version == "1"
    assert critique.backend == "offline"
    assert critique.plan.characters == len(ONE_PAGE_PLAN)
    assert critique.actions, "a one-page plan has actions"
    for finding in critique.findings:
        for evidence in finding.evidence:
            assert evidence.quote in ONE_PAGE_PLAN
    ref_ids = {r.id for r in critique.references}
    for finding in critique.findings:
        assert set(finding.citations) <= ref_ids


def test_critique_offline_model_id_is_deterministic(client: TestClient) -> None:
    body = {"plan": ONE_PAGE_PLAN, "model": "transformation-advisor-offline"}
    first = client.post("/v1/critiques", json=body).json()
    second = client.post("/v1/critiques", json=body).json()
    assert first == second


def test_critique_markdown(client: TestClient) -> None:
    r = client.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN, "format": "markdown"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["markdown"]
    headline = client.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN}).json()["verdict"]["headline"]
    assert headline in body["markdown"]


def test_critique_upload_docx(client: TestClient) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Riverside Integrated Care Programme", level=1)
    for line in ONE_PAGE_PLAN.splitlines():
        if line.startswith("- "):
            document.add_paragraph(line[2:], style="List Bullet")
    buffer = io.BytesIO()
    document.save(buffer)
    files = {"file": ("riverside.docx", buffer.getvalue(),
                      "application/vnd.openxmlformats-officedocument.wordprocessingml.document")}
    r = client.post("/v1/critiques", files=files)
    assert r.status_code == 200, r.text
    critique = Critique.model_validate(r.json())
    assert critique.plan.title == "Riverside Integrated Care Programme"
    assert critique.plan.actions >= 8


def test_critique_upload_markdown_with_format_field(client: TestClient) -> None:
    files = {"file": ("plan.md", ONE_PAGE_PLAN.encode(), "text/markdown")}
    r = client.post("/v1/critiques", files=files, data={"format": "markdown",
                                                          "model": "transformation-advisor-offline"})
    assert r.status_code == 200, r.text
    assert "markdown" in r.json()


def test_chat_plan_turn_returns_critique(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"messages": [{"role": "user", "content": ONE_PAGE_PLAN}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["backend"] == "offline"
    assert body["answer"]
    assert Critique.model_validate(body["critique"]).plan.actions > 0


def test_chat_follow_up_uses_the_conversation_sent_by_the_client(client: TestClient) -> None:
    first = client.post("/v1/chat", json={"messages": [{"role": "user", "content": ONE_PAGE_PLAN}]}).json()
    messages = [
        {"role": "user", "content": ONE_PAGE_PLAN},
        {"role": "assistant", "content": first["answer"]},
        {"role": "user", "content": "Show me a case like ours."},
    ]
    r = client.post("/v1/chat", json={"messages": messages})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] and body["answer"] != first["answer"]
    assert body["critique"] is None
    assert any(ref["id"].startswith("case:") for ref in body["citations"])


def test_chat_stream_sends_deltas_then_critique_then_done(client: TestClient) -> None:
    with client.stream("POST", "/v1/chat", json={"messages": [{"role": "user", "content": ONE_PAGE_PLAN}],
                                                  "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    kinds = [e for e, _ in events]
    assert kinds[0] == "text"
    assert "critique" in kinds
    assert kinds.index("critique") > kinds.index("text")
    assert kinds[-2:] == ["done", "message"]
    assert events[-1][1] == "[DONE]"
    text = "".join(json.loads(d)["text"] for e, d in events if e == "text")
    assert text == json.loads(events[-2][1])["answer"]
    Critique.model_validate(json.loads(dict(events)["critique"])["critique"])


def test_chat_completions_plain(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json={
        "model": "transformation-advisor", "temperature": 0.2, "user": "someone",
        "messages": [{"role": "system", "content": "You are helpful."},
                     {"role": "user", "content": ONE_PAGE_PLAN}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "transformation-advisor"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    assert "**Sources**" in choice["message"]["content"]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_chat_completions_accepts_content_parts(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json={
        "model": "transformation-advisor-offline",
        "messages": [{"role": "user", "content": [{"type": "text", "text": ONE_PAGE_PLAN}]}]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


def test_chat_completions_stream_is_openai_chunks(client: TestClient) -> None:
    with client.stream("POST", "/v1/chat/completions", json={
            "model": "transformation-advisor", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": ONE_PAGE_PLAN}]}) as r:
        assert r.status_code == 200
        events = sse_events(r.read().decode())
    assert all(e == "message" for e, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finals = [c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len(content) > 200


def test_models_lists_both_ids(client: TestClient) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["transformation-advisor", "transformation-advisor-offline"]
    assert all(m["object"] == "model" for m in body["data"])


def test_framework_opens_with_provenance(client: TestClient) -> None:
    r = client.get("/v1/framework")
    assert r.status_code == 200
    assert r.text.startswith('{"provenance":{"statement":"')
    statement = r.json()["provenance"]["statement"]
    assert "Olaitan (2024)" in statement
    assert "project's own operationalisation" in statement
    assert "not the paper's codes" in statement
    body = r.json()
    assert {t["id"] for t in body["themes"]} == {"leadership", "strategy", "structure", "people"}
    assert len(body["codes"]) >= 50
    assert len(body["finding_kinds"]) == 9


def test_interventions_lists_the_canonical_ids(client: TestClient) -> None:
    r = client.get("/v1/interventions")
    assert r.status_code == 200
    ids = {i["id"] for i in r.json()["interventions"]}
    assert {"boundary-spanning-roles", "relational-coordination-baseline", "sustainment-plan",
            "supporting-structures-for-relationships"} <= ids


def test_cases_list_and_detail(client: TestClient) -> None:
    r = client.get("/v1/cases")
    assert r.status_code == 200
    cases = r.json()["cases"]
    assert len(cases) >= 15
    assert {"torbay", "canterbury", "buurtzorg"} <= {c["id"] for c in cases}
    detail = client.get("/v1/cases/torbay")
    assert detail.status_code == 200
    case = Case.model_validate(detail.json())
    assert case.id == "torbay" and case.sources
    assert client.get("/v1/cases/case:torbay").json()["id"] == "torbay"


def test_openapi_and_docs_are_served(make_app) -> None:
    with TestClient(make_app()) as c:
        schema = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 200
    paths = schema["paths"]
    for path in ("/v1/critiques", "/v1/chat", "/v1/chat/completions", "/v1/models", "/v1/framework",
                 "/v1/interventions", "/v1/cases", "/v1/cases/{case_id}", "/healthz", "/readyz"):
        assert path in paths
    body = paths["/v1/critiques"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    text = json.dumps(schema)
    assert '"422"' not in text and "HTTPValidationError" not in text
    assert paths["/v1/models"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/healthz"]["get"]


@pytest.mark.parametrize("path", ["/v1/models", "/v1/framework", "/v1/cases"])
def test_every_v1_route_needs_the_key(make_app, path: str) -> None:
    with TestClient(make_app()) as c:
        assert c.get(path).status_code == 401
        assert c.get(path, headers=AUTH).status_code == 200
