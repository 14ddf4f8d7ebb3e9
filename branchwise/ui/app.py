"""The Gradio chat demo: streamed answers, citation chips, the trace picture, settings.

    from branchwise.ui import ServerConfig, launch_app, make_app
    app = make_app("my-index", workdir=Path("chat-work"))
    url = launch_app(app, ServerConfig(workdir=Path("chat-work")))   # http://127.0.0.1:7860/
    app.block_thread()

Layout: the chat on the left (the agent's steps stream into a collapsible "thought"
message, then the answer streams token by token; once it is done, its sources appear below
as chips, and clicking one opens the cited chunk, rendered, and its path in the tree with
each node's topics and gist); on the right the trace of the last answer (the explored tree
as a picture, tokens, calls and latency, the per-node raw / calibrated / path scores with a
legend, plus the scorer's reasoning when it gives any, and the evidence pool), the index
picker and upload-and-build, and the settings. Panels with nothing to show yet stay hidden
behind a one-line hint instead of showing empty frames. Every question reads the settings
as they are on screen, so sessions never share knobs; the models and opened indexes are
shared (see :mod:`branchwise.ui.sessions`). Analytics are off and nothing leaves the machine.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from branchwise.errors import BranchwiseError, InputError
from branchwise.retrieval.ingest import IngestConfig
from branchwise.ui import chunk_view as cv
from branchwise.ui import trace_tables as tt
from branchwise.ui import trace_view as tv
from branchwise.ui.sessions import (
    FAILED_ANSWER,
    ChatService,
    ChatSession,
    ChatUpdate,
    ModelPool,
    Workspace,
    chat_history,
)
from branchwise.compression.registry import COMPRESSORS
from branchwise.navigation.registry import SCORERS
from branchwise.ui.settings import ChatSettings, ServerConfig

log = logging.getLogger(__name__)

TITLE = "branchwise chat"
CSS = """
#chat .placeholder-content { min-height: 280px; justify-content: center; }
#chat .thought-group .title .md { font-size: var(--text-md) !important; }
#citation-chips .wrap { gap: 6px; }
#citation-chips label { border-radius: 999px !important; padding: 4px 14px !important; font-size: 0.9em;
                        cursor: pointer; }
#citation-chips label input[type=radio] { display: none; }
#citation-chips label.selected { background: var(--color-accent-soft) !important;
                                color: var(--body-text-color) !important;
                                border-color: var(--color-accent) !important; }
#citation-chips label.selected span { color: var(--body-text-color) !important; }
#chunk-view blockquote { white-space: normal; border-left: 3px solid var(--color-accent); padding: 2px 0 2px 12px;
                         margin: 8px 0 14px 0; max-height: 420px; overflow-y: auto; }
#chunk-view blockquote p { margin: 0 0 0.6em 0; }
#chunk-view .tree-path ul { list-style: none; padding-left: 1.2em; margin: 0; border-left: 1px dotted #bbb; }
#chunk-view .tree-path > ul { padding-left: 0; border-left: none; }
#chunk-view .tree-path li { margin: 0.4em 0; font-size: var(--text-md) !important; line-height: 1.45; }
#chunk-view .tree-path small { font-size: var(--text-sm) !important; color: var(--body-text-color-subdued); }
#usage-line p { font-size: var(--text-sm) !important; }
#scores-legend p, #scores-legend li { font-size: var(--text-sm) !important; }
#scores-legend li { margin: 0.15em 0; }
#scores-legend ul { margin-top: 0; }
.hint p { color: var(--body-text-color-subdued); }
"""
_NO_TRACE = ("_The trace of an answer appears here when it is done: the part of the tree the navigator explored, "
             "the scores of every node it looked at, and the evidence pool._")
_SOURCES = "Sources of this answer: click one to read it"
_NO_SOURCES = "This answer cites no sources"
_NO_CHUNK = "_Click a source above to read the cited passage and see where it sits in the tree._"


def _messages_update(history: list[dict[str, Any]], question: str, up: ChatUpdate, done: bool) -> list[dict[str, Any]]:
    """The chat so far plus this question: a collapsible steps message, then the answer."""
    last = up.steps[-1] if up.steps else "starting"
    steps_md = "\n".join(f"- {s}" for s in up.steps) or "- starting"
    meta: dict[str, Any] = (
        {"title": f"Agent steps ({len(up.steps)}): click to show how this was answered", "status": "done",
         "duration": round(up.elapsed_s, 2)}
        if done else {"title": f"Working: {last}", "status": "pending"}
    )
    out = [*history, {"role": "user", "content": question},
           {"role": "assistant", "content": steps_md, "metadata": meta}]
    if up.text:
        out.append({"role": "assistant", "content": up.text})
    return out


def _chip_choices(session: ChatSession) -> list[tuple[str, str]]:
    answer = session.answer
    if answer is None:
        return []
    return [(f"{c.marker} {cv.shorten_words(cv.plain_line(c.title), 60) if c.title else c.chunk_id}", c.chunk_id)
            for c in answer.citations]


def _answer_json(answer: Any, index_name: str) -> dict[str, Any]:
    trace = answer.trace
    return {
        "index": index_name, "question": getattr(trace, "original_question", "") or getattr(trace, "question", ""),
        "standalone_question": getattr(trace, "question", ""), "text": answer.text, "found": answer.found,
        "citations": [dataclasses.asdict(c) for c in answer.citations],
        "usage": dataclasses.asdict(answer.usage), "context_tokens": answer.context_tokens,
        "stop_reason": getattr(trace, "stop_reason", ""), "rounds": getattr(trace, "rounds", []),
    }


class _Handlers:
    """The app's event handlers (closures over the shared service)."""

    def __init__(self, service: ChatService, config: ServerConfig) -> None:
        self.service = service
        self.config = config

    def respond(self, question: str, history: list[dict[str, Any]], session: ChatSession, index_name: str,
                llm: str, embedder: str, scorer: str, beam: float, iterations: float, rounds: float,
                budget_tokens: float, compression: str, use_graph: bool) -> Iterator[tuple[Any, ...]]:
        """Stream one question.

        Outputs: box, chat, session, chips, chunk, plot, usage, steps, pool, json, legend, and
        the sources panel, trace panel and trace hint (layout only: not in the API).
        """
        skip = gr.skip()
        history = list(history or [])
        question = (question or "").strip()
        # while a question runs, the last answer's sources and trace are put away
        hide = (gr.Column(visible=False), gr.Column(visible=False), gr.Column(visible=True))
        try:
            settings = ChatSettings(llm=llm, embedder=embedder, scorer=scorer, beam=int(beam),  # type: ignore[arg-type]
                                    iterations=int(iterations), rounds=int(rounds), budget_tokens=int(budget_tokens),
                                    compression=compression, use_graph=bool(use_graph))  # type: ignore[arg-type]
            up = ChatUpdate()
            turns = chat_history(history)  # a follow-up is rewritten from the conversation
            for k, up in enumerate(self.service.stream(question, index_name, settings, turns)):
                yield ("", _messages_update(history, question, up, False), skip, skip, skip,
                       skip, skip, skip, skip, skip, skip, *(hide if k == 0 else (skip, skip, skip)))
        except Exception as e:  # shown in the chat; the session goes on
            if isinstance(e, BranchwiseError):
                log.info("question failed: %s", e)
                message, fix = e.message, (f"\n\n**Fix:** {e.fix}" if e.fix else "")
            else:
                log.exception("unexpected error while answering %r", question[:80])
                message, fix = f"internal error ({type(e).__name__}: {e}).", "\n\nThe server log has the details."
            gr.Warning(message)
            chat = [*history, {"role": "user", "content": question},
                    {"role": "assistant", "content": f"{FAILED_ANSWER} {message}{fix}"}]
            yield (question, chat, session, skip, skip, skip, skip, skip, skip, skip, skip, *hide)
            return
        answer = up.answer
        assert answer is not None  # the agent's stream always ends with the answer event
        session = ChatSession(answer=answer, index_name=index_name, asked=session.asked + 1)
        index = self.service.open_index(index_name)
        cited = [c.chunk_id for c in answer.citations]
        figure = tv.draw_traversal(answer.trace, index.tree, cited=cited) if index.tree is not None else None
        choices = _chip_choices(session)
        headers, rows, widths = tt.step_table(answer.trace, index.tree)
        note = tt.reasoning_note(answer.trace)
        yield (
            "", _messages_update(history, question, up, True), session,
            gr.update(choices=choices, value=None, label=_SOURCES if choices else _NO_SOURCES),
            _NO_CHUNK if choices else "_The answer cites no passage, so there is nothing to open._",
            figure, tt.usage_markdown(answer),
            gr.update(value={"headers": headers, "data": rows}, column_widths=widths),
            {"headers": tt.EVIDENCE_HEADERS, "data": tt.evidence_rows(answer.trace, index)},
            _answer_json(answer, index_name),
            (f"_{note}_\n\n" if note else "") + tt.scores_legend(answer.trace),
            gr.Column(visible=True), gr.Column(visible=True), gr.Column(visible=False),
        )

    def open_citation(self, chunk_id: str | None, session: ChatSession) -> str:
        """The cited chunk's text and its root → leaf path (only chunks the last answer cited)."""
        answer = session.answer
        if not chunk_id or answer is None:
            return _NO_CHUNK
        if chunk_id not in {c.chunk_id for c in answer.citations}:
            raise gr.Error(f"{chunk_id!r} is not a source of the last answer.")
        return cv.chunk_markdown(self.service.open_index(session.index_name), chunk_id, answer.trace)

    def clear(self) -> tuple[Any, ...]:
        return ([], ChatSession(), gr.update(choices=[], value=None, label=_SOURCES), _NO_CHUNK, None, "",
                gr.update(value={"headers": tt.STEP_HEADERS, "data": []}, column_widths=tt.STEP_WIDTHS),
                {"headers": tt.EVIDENCE_HEADERS, "data": []}, {}, tt.scores_legend(),
                gr.Column(visible=False), gr.Column(visible=False), gr.Column(visible=True))

    def index_info(self, name: str | None) -> str:
        if not name:
            return "_No index selected: upload documents below and build one._"
        try:
            index = self.service.open_index(name)
        except BranchwiseError as e:
            return f"**Cannot open {name}:** {e}"
        m = index.manifest
        tree = index.tree.stats() if index.tree is not None else None
        shape = f"tree depth {tree['depth']}, {tree['internal']} internal nodes" if tree else "no tree"
        graph = "graph index" if m.stage_done("graph") else "no graph"
        return f"**{name}**: {len(index.chunks)} chunks, {shape}, {graph}; embedder `{m.embedder.name}`"

    @staticmethod
    def chat_label(name: str | None) -> Any:
        return gr.update(label=_chat_label(name))

    def refresh(self, current: str | None) -> Any:
        choices = self.service.workspace.index_choices()
        return gr.update(choices=choices, value=current if current in choices else (choices[0] if choices else None))

    def build(self, files: list[Any] | None, name: str, summaries: str, embedder_spec: str, llm_spec: str,
              progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[Any, str]:
        """Copy the uploads into the work directory and build an index of them."""
        ws = self.service.workspace
        try:
            progress(0.0, desc="saving uploads")
            pairs = [(_orig_name(f), Path(_path_of(f))) for f in files or []]
            batch = ws.save_uploads(pairs, max_bytes=self.config.max_upload_mb * 2**20)
            progress(0.05, desc="building the index")
            embedder = self.service.pool.embedder(embedder_spec)
            llm = self.service.pool.llm(llm_spec) if summaries == "llm" else None
            knobs = dataclasses.replace(ChatSettings.from_settings(self.service.base), embedder=embedder_spec,
                                        llm=llm_spec, summaries=summaries)  # type: ignore[arg-type]
            built = ws.build(batch, name, knobs.apply(self.service.base), embedder=embedder, llm=llm)
        except BranchwiseError as e:
            raise gr.Error(str(e)) from e
        choices = ws.index_choices()
        return gr.update(choices=choices, value=built), f"Built **{built}** from {len(pairs)} file(s)."


def _chat_label(index_name: str | None) -> str:
    return f"Chat · index {index_name}" if index_name else "Chat · no index selected"


def _path_of(f: Any) -> str:
    return str(getattr(f, "path", None) or getattr(f, "name", None) or f)


def _orig_name(f: Any) -> str:
    """The browser-side file name (untrusted; sanitised by :meth:`Workspace.save_uploads`)."""
    return str(getattr(f, "orig_name", None) or Path(_path_of(f)).name)


def make_app(
    index: str | Path | None = None,
    *,
    workdir: str | Path,
    pool: ModelPool | None = None,
    config: ServerConfig | None = None,
    settings: Any = None,
    defaults: ChatSettings | None = None,
    index_embedder: str | None = None,
) -> gr.Blocks:
    """Build the chat app (not launched; see :func:`launch_app`).

    Args:
        index: an index directory to offer first (optional: indexes can be built in the app).
        workdir: the directory uploads and new indexes are confined to.
        pool: shared models (default: loaded from specs on first use).
        config: server settings (only the limits and ``allow_custom_specs`` matter here).
        settings: the :class:`branchwise.Settings` every question is assembled from (default:
            from the environment); the Settings tab's knobs are applied on top of it.
        defaults: the initial values of the Settings tab (default: those of ``settings``).
        index_embedder: the embedder spec of ``index`` given again (e.g. with the credentials its
            recorded spec was stripped of); default: the recorded spec.
    """
    from branchwise.assembly.settings import Settings

    config = config or ServerConfig(workdir=Path(workdir))
    settings = settings or Settings.from_env()
    defaults = defaults or ChatSettings.from_settings(settings)
    pool = pool or ModelPool(allow_custom=config.allow_custom_specs,
                             known_llms=("default", defaults.llm),
                             known_embedders=("default", defaults.embedder))
    given = {Path(index).resolve().name: Path(index)} if index is not None else {}
    if index is not None and index_embedder:
        from branchwise.retrieval.manifest import Manifest

        pool.stand_in(Manifest.load(Path(index)).embedder.spec or "default", index_embedder)
    service = ChatService(pool, Workspace(Path(workdir), given), settings)
    h = _Handlers(service, config)
    choices = service.workspace.index_choices()
    first = choices[0] if choices else None
    exts = list(IngestConfig().extensions)

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True, delete_cache=(3600, 86400)) as app:
        session = gr.State(ChatSession())
        gr.Markdown("## branchwise chat\nAsk questions about your documents, and follow-ups: the agent rewrites a "
                    "follow-up into a standalone question from the conversation (shown in its steps). The panel "
                    "on the right shows how each answer was found.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=9, min_width=420):
                chat = gr.Chatbot(label=_chat_label(first), height=None, min_height=320, max_height=640,
                                  elem_id="chat", buttons=["copy"], feedback_options=None,
                                  placeholder="Ask about your documents: the agent's steps and the answer stream here.")
                with gr.Row(equal_height=True):
                    box = gr.Textbox(show_label=False, placeholder="Type a question and press Enter", scale=8,
                                     elem_id="question", autofocus=True, max_lines=4)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                    clear = gr.Button("Clear", scale=1, min_width=80)
                with gr.Column(visible=False, elem_id="sources-panel") as sources_col:
                    chips = gr.Radio(choices=[], label=_SOURCES, elem_id="citation-chips", interactive=True)
                    chunk_view = gr.Markdown(_NO_CHUNK, elem_id="chunk-view", container=True)
            with gr.Column(scale=10, min_width=420):
                with gr.Tab("Trace", elem_id="trace-tab"):
                    with gr.Column(elem_id="trace-hint") as hint_col:
                        gr.Markdown(_NO_TRACE, elem_classes=["hint"])
                    with gr.Column(visible=False, elem_id="trace-panel") as trace_col:
                        plot = gr.Plot(label="Explored tree", show_label=False, format="png", elem_id="trace-plot")
                        usage = gr.Markdown("", elem_id="usage-line")
                        with gr.Accordion("Navigation: the scores of every node the navigator looked at", open=True):
                            steps_df = gr.Dataframe(headers=tt.STEP_HEADERS, interactive=False, max_height=300,
                                                    column_widths=tt.STEP_WIDTHS, wrap=True, elem_id="steps-table")
                            legend = gr.Markdown(tt.scores_legend(), elem_id="scores-legend")
                        with gr.Accordion("Evidence pool: what retrieval found, and what reached the LLM",
                                          open=False):
                            pool_df = gr.Dataframe(headers=tt.EVIDENCE_HEADERS, interactive=False, max_height=260,
                                                   wrap=True, elem_id="pool-table")
                        with gr.Accordion("Raw answer (JSON)", open=False):
                            raw = gr.JSON(elem_id="answer-json")
                with gr.Tab("Index", elem_id="index-tab"):
                    index_dd = gr.Dropdown(choices=choices, value=first, label="Index to ask", elem_id="index-picker")
                    with gr.Row(equal_height=True):
                        info = gr.Markdown(h.index_info(first))
                        refresh = gr.Button("Refresh list", size="sm", scale=0, min_width=110)
                    with gr.Group():
                        gr.Markdown("### New index from documents\nThe files are copied into the app's work "
                                    "directory; the new index is selected when it is built.",
                                    padding=True)
                        files = gr.File(file_count="multiple", file_types=exts, label="Documents",
                                        elem_id="uploads", height=140)
                        new_name = gr.Textbox(label="Name of the new index", placeholder="my-docs")
                        emb = gr.Dropdown(pool.embedder_specs(), value=defaults.embedder, label="Embedder",
                                          allow_custom_value=pool.allow_custom,
                                          info="default = the bundled all-MiniLM-L6-v2; questions to an index always "
                                               "use the embedder it was built with")
                        summaries = gr.Radio(["extractive", "llm"], value=defaults.summaries, label="Tree summaries",
                                             info="extractive: seconds, no LLM; llm: one call per tree node with the "
                                                  "LLM chosen in Settings")
                    build = gr.Button("Build index", variant="primary", elem_id="build")
                    build_status = gr.Markdown()
                with gr.Tab("Settings", elem_id="settings-tab"):
                    gr.Markdown("These settings are read each time you ask, and apply to this browser tab only.",
                                elem_classes=["hint"])
                    llm = gr.Dropdown(pool.llm_specs(), value=defaults.llm, label="LLM",
                                      allow_custom_value=pool.allow_custom,
                                      info="writes the answer (and plans, judges evidence, scores with yesno / llm); "
                                           "default = the embedded Qwen2.5 1.5B")
                    scorer = gr.Radio(list(SCORERS.names()), value=defaults.scorer, label="Tree scorer",
                                      info="how the navigator scores a node's children: embedding = similarity to the "
                                           "question, no LLM calls; yesno / llm = the LLM judges each slate and "
                                           "explains its scores")
                    with gr.Row():
                        beam = gr.Slider(1, 8, value=defaults.beam, step=1, label="Beam width B",
                                         info="nodes expanded per iteration")
                        iterations = gr.Slider(1, 40, value=defaults.iterations, step=1,
                                               label="Navigator iterations N", info="expansions before it stops")
                    with gr.Row():
                        rounds = gr.Slider(1, 4, value=defaults.rounds, step=1, label="Agent retrieval rounds",
                                           info="1 = retrieve once; more = search again for what is missing")
                        budget = gr.Slider(128, 4096, value=defaults.budget_tokens, step=64,
                                           label="Context token budget", info="evidence tokens given to the LLM")
                    compression = gr.Dropdown(list(COMPRESSORS.names()), value=defaults.compression,
                                              label="Compression",
                                              info="how evidence is cut to the budget: none, extractive (keeps "
                                                   "the most relevant sentences), abstractive (the LLM summarises), "
                                                   "color (the shortest of several candidates the LLM judges "
                                                   "sufficient)")
                    graph = gr.Checkbox(value=defaults.use_graph, label="Use the graph index (when the index has one)")

        knobs = [llm, emb, scorer, beam, iterations, rounds, budget, compression, graph]
        panels = [sources_col, trace_col, hint_col]
        outputs = [box, chat, session, chips, chunk_view, plot, usage, steps_df, pool_df, raw, legend, *panels]
        ask = dict(fn=h.respond, inputs=[box, chat, session, index_dd, *knobs], outputs=outputs,
                   concurrency_limit=config.chat_concurrency, concurrency_id="chat", show_progress_on=[chat])
        box.submit(**ask, api_name="ask")  # type: ignore[arg-type]
        send.click(**ask, api_visibility="private")  # type: ignore[arg-type]
        chips.input(h.open_citation, [chips, session], chunk_view, api_name="open_citation")
        clear.click(h.clear, None, [chat, session, chips, chunk_view, plot, usage, steps_df, pool_df, raw, legend,
                                    *panels], api_name="clear")
        index_dd.change(h.index_info, index_dd, info, api_name="index_info")
        index_dd.change(h.chat_label, index_dd, chat, api_visibility="private")
        refresh.click(h.refresh, index_dd, index_dd, api_name="refresh_indexes")
        build.click(h.build, [files, new_name, summaries, emb, llm], [index_dd, build_status], api_name="build_index",
                    concurrency_limit=1, concurrency_id="build")
    app.queue(max_size=config.queue_size, default_concurrency_limit=config.chat_concurrency)
    return app


def check_share_possible() -> None:
    """Refuse ``--share`` when it cannot work offline (it needs Gradio's frpc tunnel binary).

    Gradio downloads ``frpc`` from the internet on first use and then connects to
    ``gradio.live``; branchwise never downloads at run time, so share is possible only when
    the binary is already present (and the machine is online).
    """
    from gradio import tunneling

    if not Path(tunneling.BINARY_PATH).is_file():
        raise InputError(
            "--share needs Gradio's tunnel binary (frpc), which Gradio downloads from the internet, "
            "and branchwise runs offline.",
            fix=f"serve on your network instead with --host 0.0.0.0 (add --auth USER:PASS), or place the frpc "
                f"binary at {tunneling.BINARY_PATH} on a machine that is allowed to reach gradio.live.",
        )


def launch_app(app: gr.Blocks, config: ServerConfig) -> str:
    """Start serving ``app`` in the background with offline-safe settings; returns its URL.

    Loopback unless ``config.host`` says otherwise, no analytics, no monitoring endpoint, no
    server-side rendering, no MCP server, no run history. Call ``app.block_thread()`` to
    serve until interrupted, ``app.close()`` to stop.
    """
    if config.share:
        check_share_possible()
    _, local_url, share_url = app.launch(
        server_name=config.host, server_port=config.port, share=config.share, auth=config.auth,
        prevent_thread_lock=True, show_error=True, quiet=True, max_file_size=f"{config.max_upload_mb}mb",
        enable_monitoring=False, ssr_mode=False, pwa=False, mcp_server=False, run_history=False,
        footer_links=["api", "settings"], css=CSS, theme=gr.themes.Soft(), inbrowser=False,
    )
    return str(share_url or local_url)
