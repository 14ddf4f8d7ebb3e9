"""Two indexes served at once, each with its own API key: a key opens only its own index, and
nothing of one index appears in the other's answers (live server, openai client and plain HTTP)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from server_doubles import BAKING, VOLCANOES

from branchwise.server.config import ServedIndexSpec

VOLCANO_KEY = "volcano-key-0123456789abcdef"
BAKING_KEY = "baking-key-0123456789abcdef"
ETNA_Q = "Which city did the lava of Etna reach in 1669?"
BREAD_Q = "What makes sourdough bread rise?"


@pytest.fixture
def live(serve, volcano_index: Path, baking_index: Path, scripted_settings):
    return serve([ServedIndexSpec("volcanoes", volcano_index, keys=(VOLCANO_KEY,)),
                  ServedIndexSpec("baking", baking_index, keys=(BAKING_KEY,))], scripted_settings)


def ask(live, key: str, model: str, question: str):
    return live.openai(key).chat.completions.create(model=model, messages=[{"role": "user", "content": question}])


def test_a_key_opens_its_own_index_only(live) -> None:
    assert "Catania" in ask(live, VOLCANO_KEY, "volcanoes", ETNA_Q).choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError, match="not allowed to use index 'volcanoes'"):
        ask(live, BAKING_KEY, "volcanoes", ETNA_Q)
    with pytest.raises(openai.AuthenticationError, match="not valid"):
        ask(live, "made-up-key-0123456789abcdef", "volcanoes", ETNA_Q)
    with live.client() as anonymous:
        r = anonymous.post("/v1/chat/completions", json={"model": "volcanoes",
                                                         "messages": [{"role": "user", "content": ETNA_Q}]})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["type"] == "authentication_error"
    # each key lists only its own index, on the OpenAI and on the REST surface
    assert [m.id for m in live.openai(VOLCANO_KEY).models.list()] == ["volcanoes"]
    assert [m.id for m in live.openai(BAKING_KEY).models.list()] == ["baking"]
    with live.client(BAKING_KEY) as http:
        assert [i["name"] for i in http.get("/v1/indexes").json()["data"]] == ["baking"]
        assert http.get("/v1/indexes/volcanoes").status_code == 403
        assert http.get("/v1/indexes/volcanoes/documents").status_code == 403
        assert http.post("/v1/indexes/volcanoes/documents", json={"documents": [{"id": "x", "text": "y"}]}).status_code == 403
        assert http.delete("/v1/indexes/volcanoes/documents/etna").status_code == 403
        assert http.post("/v1/indexes/volcanoes/ask", json={"question": ETNA_Q}).status_code == 403
    with live.client(VOLCANO_KEY) as http:  # X-API-Key works as well as the bearer token
        assert http.get("/v1/indexes/baking", headers={"Authorization": "", "X-API-Key": BAKING_KEY}).status_code == 200


def test_nothing_of_one_index_appears_in_the_others_answers(live) -> None:
    baking_ids = {f"{d['id']}#0" for d in BAKING}
    volcano_ids = {f"{d['id']}#0" for d in VOLCANOES}
    baking_words = {"sourdough", "yeast", "flour", "dough", "croissant", "pretzel", "oven"}
    # a baking question asked of the volcano index: answered (or declined) from volcanoes alone
    reply = ask(live, VOLCANO_KEY, "volcanoes", BREAD_Q)
    text = reply.choices[0].message.content.lower()
    assert not baking_words & set(text.replace(".", " ").split())
    assert {c["chunk_id"] for c in reply.citations} <= volcano_ids  # type: ignore[attr-defined]
    with live.client(VOLCANO_KEY) as http:
        trace = http.get(f"/v1/traces/{reply.branchwise['trace_id']}").json()  # type: ignore[attr-defined]
    seen = {cid for r in trace["retrievals"] for cid in r["chunk_ids"]}
    assert seen and seen <= volcano_ids
    # and the other way round
    reply = ask(live, BAKING_KEY, "baking", ETNA_Q)
    assert "catania" not in reply.choices[0].message.content.lower()
    assert {c["chunk_id"] for c in reply.citations} <= baking_ids  # type: ignore[attr-defined]
    right = ask(live, BAKING_KEY, "baking", BREAD_Q)
    assert "dough" in right.choices[0].message.content and right.citations[0]["chunk_id"] == "bread#0"  # type: ignore[attr-defined]


def test_a_trace_is_shown_only_to_a_key_of_its_index(live) -> None:
    trace_id = ask(live, VOLCANO_KEY, "volcanoes", ETNA_Q).branchwise["trace_id"]  # type: ignore[attr-defined]
    with live.client(BAKING_KEY) as other, live.client(VOLCANO_KEY) as own, live.client() as anonymous:
        assert other.get(f"/v1/traces/{trace_id}").status_code == 403
        assert anonymous.get(f"/v1/traces/{trace_id}").status_code == 401
        assert own.get(f"/v1/traces/{trace_id}").json()["question"] == ETNA_Q
        assert own.get("/v1/traces/0123456789abcdef").status_code == 404


def test_short_keys_and_duplicate_names_are_refused() -> None:
    from branchwise.errors import InputError
    from branchwise.server.config import parse_index_args

    with pytest.raises(InputError, match="shorter than 16"):
        ServedIndexSpec("docs", Path("x"), keys=("short",))
    with pytest.raises(InputError, match="two indexes would be served"):
        parse_index_args(["a/docs", "b/docs"])
    with pytest.raises(InputError, match="not a valid index name"):
        parse_index_args(["../x=somewhere"])
    assert parse_index_args(["one=a/docs", "b/docs"]) == [("one", Path("a/docs")), ("docs", Path("b/docs"))]
