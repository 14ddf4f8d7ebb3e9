"""The Gradio chat demo (``branchwise chat DIR``) and the trace pictures it shares with the notebooks.

``make_app`` / ``launch_app`` live in :mod:`branchwise.ui.app` (imports Gradio);
:mod:`branchwise.ui.trace_view` draws traces with matplotlib only, so notebooks can use it
without the ``ui`` extra; :mod:`branchwise.ui.trace_tables` (score table, legend, evidence,
usage) and :mod:`branchwise.ui.chunk_view` (a cited chunk and its place in the tree) need
neither Gradio nor matplotlib beyond what ``trace_view`` imports.
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_app", "launch_app", "ChatSettings", "ServerConfig", "ModelPool"]


def __getattr__(name: str) -> Any:
    # lazy: importing branchwise.ui (e.g. for trace_view) must not import gradio
    if name in ("make_app", "launch_app"):
        from branchwise.ui import app

        return getattr(app, name)
    if name in ("ChatSettings", "ServerConfig"):
        from branchwise.ui import settings

        return getattr(settings, name)
    if name == "ModelPool":
        from branchwise.ui.sessions import ModelPool

        return ModelPool
    raise AttributeError(f"module 'branchwise.ui' has no attribute {name!r}")
