"""The HTTP reranker against a real server on loopback speaking both wire formats
(vLLM / Infinity / Jina-Cohere ``/v1/rerank`` and TEI ``/rerank``), with transient faults."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Iterator

import pytest
from fastapi import Request  # module level: FastAPI resolves the handlers' annotations here

from branchwise.errors import BackendError
from branchwise.relevance.factories import make_reranker

QUERY = "Which city did the lava of Etna reach?"
PASSAGES = ["Bread rises with yeast.", "In 1669 the lava of Etna reached Catania.", "Ovens bake pizza."]


def _overlap(query: str, passage: str) -> float:
    q = set(query.lower().replace("?", "").split())
    return len(q & set(passage.lower().replace(".", "").split())) / len(q)


@pytest.fixture
def server() -> Iterator[dict[str, Any]]:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    state: dict[str, Any] = {"faults": [], "requests": []}
    app = FastAPI()

    def fault() -> JSONResponse | None:
        if state["faults"]:
            code = state["faults"].pop(0)
            return JSONResponse({"error": "busy"}, status_code=code, headers={"Retry-After": "0"} if code == 429 else {})
        return None

    @app.post("/v1/rerank")
    async def rerank(request: Request) -> Any:
        body = await request.json()
        state["requests"].append(("rerank", body, request.headers.get("authorization")))
        if (f := fault()) is not None:
            return f
        if body.get("model") != "toy-reranker":
            return JSONResponse({"error": "unknown model"}, status_code=404)
        results = [{"index": i, "relevance_score": _overlap(body["query"], d)} for i, d in enumerate(body["documents"])]
        return {"results": sorted(results, key=lambda r: -r["relevance_score"])}

    @app.post("/rerank")
    async def tei(request: Request) -> Any:
        body = await request.json()
        state["requests"].append(("tei", body, request.headers.get("authorization")))
        if (f := fault()) is not None:
            return f
        # TEI returns raw logits when asked; here: a logit, to exercise the sigmoid
        return [{"index": i, "score": 8 * _overlap(body["query"], t) - 2} for i, t in enumerate(body["texts"])]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    state["url"] = f"http://127.0.0.1:{port}"
    yield state
    srv.should_exit = True
    thread.join(timeout=10)


def test_rerank_wire_format_scores_every_passage_in_order(server: dict[str, Any], monkeypatch) -> None:
    monkeypatch.setenv("BRANCHWISE_RERANKER_API_KEY", "k-123")
    r = make_reranker(f"rerank:{server['url']}/v1#toy-reranker")
    scores = r.score(QUERY, PASSAGES)  # type: ignore[union-attr]
    assert max(range(3), key=lambda i: scores[i]) == 1 and all(0 <= s <= 1 for s in scores)
    kind, body, auth = server["requests"][-1]
    assert kind == "rerank" and body["documents"] == PASSAGES and body["top_n"] == 3 and auth == "Bearer k-123"
    assert "k-123" not in r.name  # type: ignore[union-attr]


def test_tei_wire_format_and_logits_become_probabilities(server: dict[str, Any]) -> None:
    scores = make_reranker(f"tei:{server['url']}").score(QUERY, PASSAGES)  # type: ignore[union-attr]
    assert max(range(3), key=lambda i: scores[i]) == 1 and all(0 < s < 1 for s in scores)


def test_transient_faults_are_retried_and_bad_requests_are_not(server: dict[str, Any]) -> None:
    server["faults"] = [429, 503]
    scores = make_reranker(f"rerank:{server['url']}/v1#toy-reranker").score(QUERY, PASSAGES)  # type: ignore[union-attr]
    assert len(scores) == 3 and len(server["requests"]) == 3  # two faults, then the answer
    with pytest.raises(BackendError, match="refused the request \\(HTTP 404\\)"):
        make_reranker(f"rerank:{server['url']}/v1#other-model").score(QUERY, PASSAGES)  # type: ignore[union-attr]


def test_a_dead_endpoint_fails_clearly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from branchwise.relevance.http import HTTPReranker, HTTPRerankerConfig

    r = HTTPReranker(f"http://127.0.0.1:{port}", wire="tei", config=HTTPRerankerConfig(max_retries=1))
    with pytest.raises(BackendError, match="unreachable"):
        r.score(QUERY, PASSAGES)
