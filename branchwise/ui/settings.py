"""Settings of the chat demo: what one question runs with, and how the server is exposed.

Two frozen dataclasses, one per concern:

* :class:`ChatSettings` — the knobs a user turns in the Settings tab (models, beam,
  iterations, rounds, token budget, compression, graph). They are read from the UI on
  every question, so two browser sessions can ask with different settings at once.
* :class:`ServerConfig` — how ``branchwise chat`` serves the app: loopback by default,
  optional basic auth, the work directory that confines uploads and new indexes, and the
  queue limits that keep several sessions responsive on a small CPU.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from branchwise.errors import InputError

SummaryChoice = Literal["extractive", "llm"]


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What one question is answered with (the Settings tab): a view of :class:`branchwise.Settings`.

    The defaults are those of ``branchwise.Settings()`` (a test keeps them equal), and
    :meth:`apply` writes the knobs back into a ``Settings``, which the composition root
    assembles exactly as for ``bw.ask`` and ``branchwise ask``.

    Attributes:
        llm: LLM spec (``default`` = the embedded Qwen2.5-Coder-1.5B GGUF, or a spec
            registered with the app, see :class:`~branchwise.ui.sessions.ModelPool`).
        embedder: embedder spec used when *building* a new index from uploads; an opened
            index always uses the embedder recorded in its manifest.
        scorer: tree-navigation scorer (a name in ``navigation.registry.SCORERS``).
        beam: navigator beam width B.
        iterations: navigator iterations N.
        rounds: agent retrieval rounds (1 = retrieve once, then answer).
        budget_tokens: evidence tokens handed to the generator.
        compression: context compressor (a name in ``compression.registry.COMPRESSORS``).
        use_graph: add the GRAG graph route when the index has a graph.
        summaries: how a new index's tree is summarised (``extractive`` needs no LLM and
            builds in seconds; ``llm`` writes abstractive summaries, one call per node).
    """

    llm: str = "default"
    embedder: str = "default"
    scorer: str = "embedding"
    beam: int = 2
    iterations: int = 10
    rounds: int = 2
    budget_tokens: int = 384
    compression: str = "extractive"
    use_graph: bool = True
    summaries: SummaryChoice = "llm"

    def __post_init__(self) -> None:
        from branchwise.compression.registry import COMPRESSORS
        from branchwise.navigation.registry import SCORERS

        bad = [name for name, ok in (
            ("beam", 1 <= self.beam <= 16),
            ("iterations", 1 <= self.iterations <= 100),
            ("rounds", 1 <= self.rounds <= 6),
            ("budget_tokens", 64 <= self.budget_tokens <= 32_000),
            ("compression", self.compression in COMPRESSORS),
            ("scorer", self.scorer in SCORERS),
            ("summaries", self.summaries in ("extractive", "llm")),
        ) if not ok]
        if bad:
            raise InputError(
                f"chat settings out of range: {', '.join(bad)}.",
                fix="use beam 1-16, iterations 1-100, rounds 1-6, a budget of 64-32000 tokens, "
                f"compression one of {', '.join(COMPRESSORS.names())}, scorer one of {', '.join(SCORERS.names())}.",
            )

    @classmethod
    def from_settings(cls, s: Any) -> "ChatSettings":
        """The Settings-tab values of a :class:`branchwise.Settings`."""
        return cls(llm=s.llm_spec(), embedder=s.embedder, scorer=s.scorer, beam=s.navigator.beam,
                   iterations=s.navigator.iterations, rounds=s.agent.max_rounds,
                   budget_tokens=s.agent.context_budget_tokens, compression=s.compression.mode,
                   use_graph=s.graph_route, summaries=s.index.tree.summary.mode)

    def apply(self, base: Any) -> Any:
        """``base`` (a :class:`branchwise.Settings`) with these knobs."""
        import dataclasses

        tree = base.index.tree
        tree = dataclasses.replace(tree, summary=dataclasses.replace(tree.summary, mode=self.summaries))
        return base.replace(llm=self.llm, embedder=self.embedder, scorer=self.scorer, graph_route=self.use_graph,
                            agent={"max_rounds": self.rounds, "context_budget_tokens": self.budget_tokens},
                            navigator={"beam": self.beam, "iterations": self.iterations},
                            compression={"mode": self.compression}, index={"tree": tree})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``"user:pass"`` → ``("user", "pass")``; None stays None."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise InputError("--auth must look like USER:PASSWORD.", fix="e.g. --auth alice:s3cret (both parts non-empty).")
    return user, password


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the chat app is served.

    Attributes:
        workdir: the only directory the app writes to: uploads go to ``workdir/uploads``,
            indexes built from them to ``workdir/indexes``, Gradio's upload cache (set by
            ``branchwise chat``) to ``workdir/gradio-cache``.
        host: interface to bind; loopback unless the user asks otherwise.
        port: TCP port (None: Gradio picks a free one from 7860 up).
        share: open a public Gradio share link (needs the frpc binary and the internet;
            refused offline, see :func:`branchwise.ui.app.check_share_possible`).
        auth: optional ``(user, password)`` for HTTP basic login.
        chat_concurrency: questions answered at once across all sessions. The LLM
            serialises its own calls (llama.cpp keeps one KV cache), but retrieval,
            navigation with the embedding scorer and rendering overlap, so a few
            concurrent questions keep every session responsive.
        queue_size: questions waiting at most before new ones are refused.
        max_upload_mb: largest upload accepted.
        custom_specs: allow typing model specs that were not configured at start-up. On by
            default only on loopback: a spec names files and URLs the *server* opens.
    """

    workdir: Path = Path("branchwise-chat")
    host: str = "127.0.0.1"
    port: int | None = None
    share: bool = False
    auth: tuple[str, str] | None = None
    chat_concurrency: int = 4
    queue_size: int = 64
    max_upload_mb: int = 50
    custom_specs: bool | None = None

    def __post_init__(self) -> None:
        if self.chat_concurrency < 1 or self.queue_size < 1 or self.max_upload_mb < 1:
            raise InputError("chat_concurrency, queue_size and max_upload_mb must be >= 1.", fix="use positive limits.")
        if self.port is not None and not 0 < self.port < 65536:
            raise InputError(f"port {self.port} is not a TCP port.", fix="use a port in 1-65535, or omit it.")

    @property
    def allow_custom_specs(self) -> bool:
        """Custom model specs: as configured, else only when bound to loopback without share."""
        if self.custom_specs is not None:
            return self.custom_specs
        return is_loopback(self.host) and not self.share
