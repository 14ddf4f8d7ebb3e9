"""The running chat app driven through ``gradio_client``, as a script or another program would.

The app is served on 127.0.0.1 (free port) over a real index of the demo corpus with the real
embedder; the LLM is a streaming scripted double except in the one ``real_llm`` test.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_doubles import DEMO_QUESTION, StreamingScriptedLLM, grounded_reply

from branchwise import Settings
from branchwise.errors import InputError
from branchwise.ui.sessions import Workspace, safe_name

# outputs of /ask, in order (the panels it shows and hides are layout, not API outputs)
BOX, CHAT, CHIPS, CHUNK, PLOT, USAGE, STEPS, POOL, RAW, LEGEND = range(10)


def _value(output: Any) -> Any:
    """An output's value, also when the app sent it as an update with other properties."""
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    return "".join(c.get("text", "") for c in content) if isinstance(content, list) else str(content)


def test_question_streams_steps_and_tokens_then_an_answer_with_citations(live_app, demo_index: Path) -> None:
    client = live_app.client()
    job = client.submit(DEMO_QUESTION, api_name="/ask")
    updates = list(job)  # every streamed update, the final one last
    final = job.result()
    assert final == updates[-1] and len(updates) >= 5  # steps and tokens arrive as separate updates

    # steps stream first, in a pending "thought" message, before the answer text exists
    titles = [m["metadata"]["title"] for u in updates for m in u[CHAT] if m.get("metadata")]
    assert any(t.startswith("Working: navigating level") for t in titles)
    assert any(t.startswith("Working: evidence pool: ") for t in titles)
    assert any(t.startswith("Working: compressing") for t in titles)
    # tokens: some update showed a strict prefix of the final answer
    answer_json = final[RAW]
    texts = [_text(u[CHAT][-1]) for u in updates if len(u[CHAT]) == 3]
    assert any(t and t != answer_json["text"] and answer_json["text"].startswith(t) for t in texts)

    # the answer cites real chunks, and the quoted sentence is in the cited chunk
    assert answer_json["found"] and answer_json["question"] == DEMO_QUESTION
    cited = [c["chunk_id"] for c in answer_json["citations"]]
    assert cited and all(c["marker"] in answer_json["text"] for c in answer_json["citations"])
    chunk_text = (demo_index / "chunks.jsonl").read_text(encoding="utf-8")
    assert all(f'"id": "{cid}"' in chunk_text for cid in cited)
    sentence = answer_json["text"].removeprefix("From the documentation: ").rsplit(" [", 1)[0]
    assert sentence and " ".join(sentence.split()) in " ".join(_chunk(demo_index, cited[0])["text"].split())

    # final chat: user, steps (done, with a duration), answer
    user, steps, answer = final[CHAT]
    assert _text(user) == DEMO_QUESTION and steps["metadata"]["status"] == "done"
    assert "navigating level" in _text(steps) and _text(answer) == answer_json["text"]
    # chips: one per citation, labelled with marker and title, valued by chunk id
    assert [c[1] for c in final[CHIPS]["choices"]] == cited
    assert final[CHIPS]["choices"][0][0].startswith(answer_json["citations"][0]["marker"])

    # the trace panel: a PNG picture, the score table, the evidence pool and the usage line
    assert final[PLOT]["type"] == "matplotlib"
    png = base64.b64decode(final[PLOT]["plot"].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    steps_table = _value(final[STEPS])
    rows = steps_table["data"]
    # the embedding scorer gives no reasoning: no empty reasoning column, and the legend says why
    assert steps_table["headers"] == ["iter", "expanded → scored node", "raw", "calibrated", "path"]
    assert final[STEPS]["column_widths"] and len(final[STEPS]["column_widths"]) == 5
    assert "No reasoning column: the embedding scorer" in final[LEGEND]
    assert "best node seen so far is **1**" in final[LEGEND] and "p(root) = 1 (α = 0.5 here)" in final[LEGEND]
    assert rows and all(0.0 <= r[2] <= 1.0 and 0.0 <= r[4] <= 1.0 for r in rows)
    assert rows[0][1].startswith(_tree_root(demo_index) + " → ")  # navigation starts by expanding the root
    leaf_of_cited = _path_to_root(demo_index, cited[0])[0]
    assert any(r[1].endswith(f"{leaf_of_cited} · {cited[0]}") for r in rows)  # the cited leaf was scored
    pool = {r[0]: r for r in final[POOL]["data"]}
    assert cited[0] in pool and pool[cited[0]][5] == "yes" and pool[cited[0]][2] in ("tree", "hybrid")  # fused routes
    assert "**2** LLM calls" in final[USAGE] and "stopped: round limit reached" in final[USAGE]  # answer + support check


def test_citation_chip_opens_the_chunk_and_its_path_in_the_tree(live_app, demo_index: Path) -> None:
    client = live_app.client()
    out = client.predict(DEMO_QUESTION, api_name="/ask")
    cited = out[RAW]["citations"][0]["chunk_id"]
    view = client.predict(cited, api_name="/open_citation")
    chunk = _chunk(demo_index, cited)
    body = [ln for ln in chunk["text"].split("\n") if ln.strip() and not ln.startswith("#")]
    assert f"`{cited}`" in view and body[0][:40].replace("&", "&amp;") in view
    # markdown headings of the chunk are shown as headings, never as raw "#" marks
    assert "<blockquote>" in view and "# " not in view.split("<blockquote>", 1)[1].split("</blockquote>")[0]
    # the path root → leaf, each node with its path relevance, in order; the root is p = 1
    path = _path_to_root(demo_index, cited)[::-1]
    positions = [view.index(f"<b>{nid}</b>") for nid in path]
    assert positions == sorted(positions) and "Place in the tree" in view
    assert f"<b>{path[0]}</b> · root · p = 1.00" in view and "p=—" not in view
    # extractive summaries: topics apart from the gist sentence, which is cut at a word boundary
    assert "<i>topics:</i>" in view and "Topics:" not in view
    # a chunk the last answer did not cite is refused (the chips are the only way in)
    other = next(c for c in _all_chunk_ids(demo_index) if c not in {x["chunk_id"] for x in out[RAW]["citations"]})
    with pytest.raises(Exception, match="not in the list of choices|not a source"):
        client.predict(other, api_name="/open_citation")


def test_bad_settings_and_unknown_index_answer_with_a_fix_not_a_crash(live_app) -> None:
    client = live_app.client()
    with pytest.raises(Exception, match="less than minimum value 1"):  # the slider's own bounds
        client.predict(DEMO_QUESTION, api_name="/ask", beam=0)
    with pytest.raises(Exception, match="not in the list of choices"):  # only listed indexes can be named
        client.predict(DEMO_QUESTION, api_name="/ask", index_name="../../etc")
    out = client.predict("   ", api_name="/ask")
    assert "Could not answer" in _text(out[CHAT][-1]) and "the question is empty" in _text(out[CHAT][-1])
    # the session still works afterwards
    assert client.predict(DEMO_QUESTION, api_name="/ask")[RAW]["found"]


def test_a_failing_backend_is_reported_in_the_chat_with_its_fix(demo_index: Path, real_embedder: Any,
                                                                 launch) -> None:
    from branchwise.errors import BackendError

    def down(messages: Any) -> str:
        raise BackendError("the model server at 127.0.0.1:9 refused the connection.", fix="start the server.")

    live = launch(demo_index, {"down": StreamingScriptedLLM(replies=down)}, real_embedder, llm="down")
    out = live.client().predict(DEMO_QUESTION, api_name="/ask")
    message = _text(out[CHAT][-1])
    assert "Could not answer" in message and "refused the connection" in message and "start the server" in message
    assert out[BOX] == DEMO_QUESTION  # the question stays in the box to retry


def test_sessions_run_concurrently_and_keep_their_own_state(live_app, demo_index: Path) -> None:
    questions = [
        "Why are relevance scores calibrated across slates?",
        "How does the agent decide the evidence pool is sufficient?",
        "What does extractive compression keep?",
        "How are entities linked in the graph index?",
        "How do I build an index from the command line?",
        "What is path relevance?",
    ]
    llm = live_app.llm
    llm.delay_s, llm.max_active = 0.08, 0
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            client = live_app.client()
            out = client.predict(questions[i], api_name="/ask")
            view = client.predict(out[RAW]["citations"][0]["chunk_id"], api_name="/open_citation")
            results[i] = (out, view)
        except BaseException as e:  # noqa: BLE001 - collected and re-raised below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(questions))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    llm.delay_s = 0.02
    assert not errors, errors
    took = time.perf_counter() - t0
    assert len(results) == len(questions), f"finished {len(results)} of {len(questions)} in {took:.0f} s"
    assert llm.max_active >= 2  # answers were being written for two sessions at the same time
    for i, (out, view) in results.items():
        raw = out[RAW]
        assert raw["question"] == questions[i]  # each session got the answer to its own question
        assert _text(out[CHAT][0]) == questions[i] and len(out[CHAT]) == 3  # no other session's messages
        assert f"`{raw['citations'][0]['chunk_id']}`" in view  # and its own citations


def test_uploads_are_confined_to_the_work_directory(live_app, tmp_path: Path) -> None:
    client = live_app.client()
    doc = b"# Lighthouses\n\nThe Eddystone lighthouse stands on rocks fourteen kilometres off Plymouth."
    # upload through Gradio's own endpoint under a hostile name, then build from it
    r = httpx.post(f"{live_app.url.rstrip('/')}/gradio_api/upload",
                   files=[("files", ("../../../escape.md", doc, "text/markdown"))])
    r.raise_for_status()
    server_path = r.json()[0]
    filedata = {"path": server_path, "orig_name": "../../../escape.md", "meta": {"_type": "gradio.FileData"}}
    dropdown, status = client.predict([filedata], "../../evil name", "extractive", api_name="/build_index")
    work = live_app.workdir.resolve()
    assert dropdown["value"] == "evil_name" and ["evil_name", "evil_name"] in dropdown["choices"]
    assert "evil_name" in status
    assert (work / "indexes" / "evil_name" / "manifest.json").is_file()
    saved = list((work / "uploads").rglob("*.md"))
    assert [p.name for p in saved] == ["escape.md"] and saved[0].read_bytes() == doc
    batch = saved[0].parent
    for escaped in (batch / "../../../escape.md", batch / "../../escape.md", batch / "../escape.md"):
        assert not escaped.resolve().exists()  # where the hostile name pointed
    # Gradio's own upload cache also dropped the directory part of the name
    from gradio.utils import get_upload_folder

    assert Path(server_path).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    assert Path(server_path).name == "escape.md"
    assert not (work.parent / "evil name").exists() and not (work.parent / "evil_name").exists()
    # the new index answers questions
    out = client.predict("Where does the Eddystone lighthouse stand?", api_name="/ask", index_name="evil_name")
    assert out[RAW]["citations"][0]["chunk_id"].startswith("escape.md#")

    # a raw request naming a server file the user did not upload is refused by Gradio
    # (gradio_client would upload a local path itself, so this goes through the plain HTTP API)
    secret = tmp_path / "secret.md"
    secret.write_text("# secret\n\ndo not read")
    forged = {"path": str(secret), "orig_name": "secret.md", "meta": {"_type": "gradio.FileData"}}
    events = _call_raw(live_app.url, "build_index", [[forged], "forged", "extractive", "default", "scripted"])
    assert events[-1][0] == "error" and "it was not uploaded by a user" in events[-1][1], events
    assert not (work / "indexes" / "forged").exists() and len(list((work / "uploads").rglob("*.md"))) == 1


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd.md", "passwd.md"), ("..\\..\\boot.ini.md", "boot.ini.md"), ("/abs/path/x.md", "x.md"),
    ("a/../../b.md", "b.md"), (".hidden.md", "hidden.md"), ("nul\x00byte.md", "nulbyte.md"),
    ("spaces and ünïcødé.md", "spaces_and_n_c_d_.md"), ("..", "file"), ("", "file"), ("...md", "md"),
])
def test_safe_name_keeps_only_a_harmless_last_component(name: str, expected: str) -> None:
    got = safe_name(name)
    assert got == expected
    assert "/" not in got and "\\" not in got and not got.startswith(".")


def test_workspace_copies_uploads_inside_and_refuses_other_types(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "work")
    src = tmp_path / "tmpfile"
    src.write_text("hello world")
    batch = ws.save_uploads([("../a.md", src), ("x/../../a.md", src), ("..\\b.txt", src)], max_bytes=1000)
    assert sorted(p.name for p in batch.iterdir()) == ["a-1.md", "a.md", "b.txt"]
    assert batch.parent == (tmp_path / "work" / "uploads").resolve()
    with pytest.raises(InputError, match="not a supported document type"):
        ws.save_uploads([("run.py", src)], max_bytes=1000)
    with pytest.raises(InputError, match="larger than"):
        ws.save_uploads([("big.md", src)], max_bytes=5)
    with pytest.raises(InputError, match="no index named"):
        ws.index_path("../work")
    with pytest.raises(InputError, match="only from files uploaded"):
        ws.build(tmp_path, "x", Settings(), embedder=None, llm=None)  # type: ignore[arg-type]


def test_basic_auth_is_required_when_configured(demo_index: Path, real_embedder: Any, launch) -> None:
    from gradio_client import Client

    live = launch(demo_index, {"scripted": StreamingScriptedLLM(replies=grounded_reply)}, real_embedder,
                  llm="scripted", auth=("alice", "s3cret"))
    assert httpx.get(f"{live.url.rstrip('/')}/config").status_code == 401
    with pytest.raises(ValueError, match="Could not login"):
        Client(live.url, verbose=False, analytics_enabled=False, auth=("alice", "wrong"))
    client = live.client(auth=("alice", "s3cret"))
    assert client.predict(DEMO_QUESTION, api_name="/ask")[RAW]["found"]


def test_loopback_analytics_off_and_share_refused_offline(live_app, demo_index: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from gradio import tunneling

    from branchwise.cli.main import build_parser, main

    assert live_app.app.server_name == "127.0.0.1" and live_app.url.startswith("http://127.0.0.1:")
    assert live_app.app.analytics_enabled is False and os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    args = build_parser().parse_args(["chat", str(demo_index)])
    assert args.host == "127.0.0.1" and args.share is False and args.auth is None
    monkeypatch.setattr(tunneling, "BINARY_PATH", str(tmp_path / "no-frpc"))
    code = main(["chat", str(demo_index), "--share", "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2 and "--share needs Gradio's tunnel binary" in err and "--host 0.0.0.0" in err
    assert main(["chat", str(tmp_path), "--workdir", str(tmp_path / "w")]) == 2
    assert "not an index directory" in capsys.readouterr().err
    assert main(["chat", str(demo_index), "--auth", "nopassword"]) == 2


@pytest.mark.real_llm
def test_real_embedded_llm_answers_through_the_app(demo_index: Path, real_embedder: Any, real_llm: Any,
                                                     launch) -> None:
    live = launch(demo_index, {"default": real_llm}, real_embedder, llm="default")
    out = live.client().predict("What does the navigator expand in every iteration?", api_name="/ask",
                                budget_tokens=400, iterations=4)
    raw = out[RAW]
    assert raw["usage"]["llm_calls"] >= 1 and raw["usage"]["completion_tokens"] > 0
    assert raw["found"], raw["text"]
    assert raw["citations"] and all(c["chunk_id"] in _all_chunk_ids(demo_index) for c in raw["citations"])


# -- helpers -------------------------------------------------------------------------------
def _call_raw(url: str, api_name: str, data: list[Any]) -> list[tuple[str, str]]:
    """POST /gradio_api/call/<api_name> and read its server-sent events: [(event, data), ...]."""
    base = url.rstrip("/")
    event_id = httpx.post(f"{base}/gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
    events: list[tuple[str, str]] = []
    with httpx.stream("GET", f"{base}/gradio_api/call/{api_name}/{event_id}", timeout=60) as r:
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, line.split(":", 1)[1].strip()))
    return events


# reading the index files directly (no second embedder)
def _chunk(index_dir: Path, chunk_id: str) -> dict[str, Any]:
    import json

    for line in (index_dir / "chunks.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["id"] == chunk_id:
            return rec
    raise KeyError(chunk_id)


def _all_chunk_ids(index_dir: Path) -> list[str]:
    import json

    return [json.loads(line)["id"] for line in (index_dir / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]


def _tree(index_dir: Path) -> Any:
    from branchwise.retrieval.tree import Tree

    return Tree.load(index_dir / "tree.json")


def _tree_root(index_dir: Path) -> str:
    return _tree(index_dir).root


def _path_to_root(index_dir: Path, chunk_id: str) -> list[str]:
    tree = _tree(index_dir)
    leaf = tree.leaf_for_chunk(chunk_id)
    assert leaf is not None
    return tree.path_to_root(leaf.id)


# -- the trace picture's pieces on a hand-built tree and trace -------------------------------
def _toy() -> tuple[Any, Any]:
    """Root r → a (l0, l1), b (l2, l3); two navigations with hand-set path scores."""
    from branchwise.agents.trace import AgentTrace
    from branchwise.navigation.trace import TraversalStep, TraversalTrace
    from branchwise.retrieval.tree import Node, Tree

    nodes = {"r": Node("r", 2, children=["a", "b"], summary="all"),
             "a": Node("a", 1, parent="r", children=["l0", "l1"], summary="first"),
             "b": Node("b", 1, parent="r", children=["l2", "l3"], summary="second")}
    for i in range(4):
        nodes[f"l{i}"] = Node(f"l{i}", 0, parent="a" if i < 2 else "b", chunk_id=f"c{i}")
    nav1 = TraversalTrace("q", steps=[
        TraversalStep(1, "r", ["a", "b"], ["child", "child"], raw_scores=[0.6, 0.2], calibrated=[0.8, 0.3],
                      path_scores=[0.8, 0.3]),
        TraversalStep(2, "a", ["l0", "l1", "l3"], ["child", "child", "calibration"], raw_scores=[0.7, 0.3, 0.1],
                      calibrated=[0.9, 0.4, 0.2], path_scores=[0.9, 0.4, 0.2]),
    ], ranked=[["l0", "c0", 0.9]])
    nav2 = TraversalTrace("gap", steps=[TraversalStep(1, "r", ["a", "b"], ["child", "child"], raw_scores=[0.4, 0.6],
                                                      calibrated=[0.5, 0.7], path_scores=[0.5, 0.7])])
    trace = AgentTrace(question="q", navigation=[nav1, nav2], retrievals=[
        {"round": 0, "source": "tree", "query": "q", "chunk_ids": ["c0", "c1"], "scores": [0.9, 0.4]},
        {"round": 1, "source": "hybrid", "query": "gap", "chunk_ids": ["c1", "c2"], "scores": [0.6, 0.1]},
    ], compression={"method": "extractive", "budget_tokens": 10, "tokens_before": 30, "tokens_after": 10,
                    "ratio": 0.33, "removed": ["c2"], "emptied": False})
    return Tree(nodes=nodes, root="r", max_children=2), trace


def test_trace_view_layout_scores_and_tables_on_a_hand_built_trace() -> None:
    from types import SimpleNamespace

    from branchwise.ui import trace_tables as tt
    from branchwise.ui import trace_view as tv

    tree, trace = _toy()
    # best path relevance over both navigations; l3 was scored only as a calibration item
    assert tv.path_relevance(trace) == {"a": 0.8, "b": 0.7, "l0": 0.9, "l1": 0.4, "l3": 0.2}
    assert tv.expanded_in(trace) == ["r", "a", "r"]
    assert tv.explored_nodes(trace, tree) == {"r", "a", "b", "l0", "l1"}  # calibration items are not drawn
    assert tv.explored_nodes(trace, tree, max_nodes=3) == {"r", "a", "l0"}  # expanded + the best child
    assert tv.highlighted_leaves(trace, tree, ["c1"]) == ["l1"]
    assert tv.highlighted_leaves(trace, tree) == ["l0"]  # no citation: the best-ranked leaf
    # leaves left to right, parents centred over their drawn children, one row per depth
    pos = tv.tree_layout(tree, {"r", "a", "b", "l0", "l1"})
    assert pos == {"l0": (0.0, -2.0), "l1": (1.0, -2.0), "a": (0.5, -1.0), "b": (2.0, -1.0), "r": (1.25, -0.0)}
    rows = tt.step_rows(trace, tree)
    assert rows[0] == [1, "r → a", 0.6, 0.8, 0.8, ""]
    assert rows[4] == [2, "a → l3 · c3 (calib.)", 0.1, 0.2, 0.2, ""]
    titles = SimpleNamespace(chunks=SimpleNamespace(get=lambda cid: SimpleNamespace(title=f"T{cid[1]}")))
    assert tt.evidence_rows(trace, titles) == [
        ["c0", "T0", "tree", 1, 0.9, "yes"],
        ["c1", "T1", "tree", 1, 0.6, "yes"],  # the best score over both retrievals
        ["c2", "T2", "hybrid", 2, 0.1, "no (compressed away)"],
    ]
    # notebooks/traversal_traces.ipynb reads these through trace_view
    assert (tv.step_rows, tv.STEP_HEADERS, tv.SCORES_LEGEND) == (tt.step_rows, tt.STEP_HEADERS, tt.SCORES_LEGEND)


def test_trace_picture_highlights_the_path_to_the_cited_leaf() -> None:
    from matplotlib.colors import to_hex

    from branchwise.ui import trace_view as tv

    tree, trace = _toy()
    fig = tv.draw_traversal(trace, tree, cited=["c1"])
    ax = fig.axes[0]
    red = [line for line in ax.lines if to_hex(line.get_color()) == tv._PATH]
    assert sorted((line.get_xdata()[0], line.get_xdata()[1]) for line in red) == [(0.5, 1.0), (1.25, 0.5)]
    assert len(ax.collections) == 5  # one marker per drawn node
    assert "best over 2 navigations" in ax.get_title(loc="left")
    assert tv.png_bytes(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_score_table_drops_an_empty_reasoning_column_and_keeps_a_real_one() -> None:
    from branchwise.ui import trace_tables as tt

    tree, trace = _toy()
    headers, rows, widths = tt.step_table(trace, tree)
    assert headers == tt.STEP_HEADERS[:5] and len(widths) == 5 and all(len(r) == 5 for r in rows)
    assert tt.reasoning_note(trace).startswith("No reasoning column:")
    trace.navigation[0].steps[0].reasoning = "a is about the question"
    headers, rows, widths = tt.step_table(trace, tree)
    assert headers == tt.STEP_HEADERS and len(widths) == 6 and rows[0][5] == "a is about the question"
    assert tt.reasoning_note(trace) == ""


def test_documents_render_as_inert_html_that_reads_like_markdown() -> None:
    from branchwise.ui import chunk_view as cv

    text = ("# Title\n\nFirst line\nwraps here; `code` & <b>bold</b> [x](http://evil)\n\n## Part two\n\n"
            "- one\n- two\n\n```\n<script>x</script>\n```")
    out = cv.document_html(text, drop_heading="Title")
    assert out.startswith("<p>First line wraps here; <code>code</code> &amp; &lt;b&gt;bold&lt;/b&gt; "
                          "[x](http://evil)")
    assert "<p><strong>Part two</strong></p>" in out and "<p>- one<br>- two</p>" in out
    assert "<pre><code>&lt;script&gt;x&lt;/script&gt;</code></pre>" in out and "#" not in out and "<script" not in out
    assert cv.document_html("# Other\n\nx", drop_heading="Title").startswith("<p><strong>Other</strong></p>")
    assert cv.plain_line("## A `b`\n- c") == "A b c"


def test_summaries_split_into_topics_and_a_gist_cut_at_a_word() -> None:
    from branchwise.ui import chunk_view as cv

    summary = ("Topics: aliases, file, answer, gguf, bottom-up, runs, calibrated, using, extra\n"
               "Adding documents places each new leaf under the best-matching parent, splits a node that exceeds "
               "M children, and marks the summaries above it as stale so they are written again later on.")
    topics, gist = cv.summary_parts(summary, max_topics=8, max_chars=120)
    assert topics == ["aliases", "file", "answer", "gguf", "bottom-up", "runs", "calibrated", "using", "…"]
    assert gist.endswith("…") and len(gist) <= 120 and not gist.startswith("Topics")
    assert summary.split("\n")[1].startswith(gist[:-1])  # a prefix of the sentence, cut between words
    assert gist[:-1] == gist[:-1].rstrip() and summary.split("\n")[1][len(gist) - 1] == " "
    assert cv.summary_parts("An LLM summary. It has no topics.") == ([], "An LLM summary. It has no topics.")
    cut = cv.shorten_words("One sentence here. And a much longer second sentence.", 30)
    assert cut == "One sentence here. And a much…"  # whole words, and the ellipsis fits in the limit
    assert cv.shorten_words("A first sentence that ends. Then more words", 40) == "A first sentence that ends."
