"""Offline-safe process defaults for the entry points (CLI, demo, tests).

Library code never depends on these: backends pass ``local_files_only=True``, Chroma gets
``anonymized_telemetry=False`` and our own embeddings, tiktoken encodings are built from
bundled files. These variables close the remaining doors (telemetry pings, hub retries)
for a whole *process* and are therefore set only by entry points, with ``setdefault`` so
a user's explicit setting wins.
"""

from __future__ import annotations

import os

OFFLINE_DEFAULTS: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub: never query the hub (it retries 23-70 s otherwise)
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb posthog telemetry
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime telemetry (loaded by chromadb)
    "GRADIO_ANALYTICS_ENABLED": "False",
    "LANGSMITH_TRACING": "false",  # langgraph / langchain-core tracing
    "LANGCHAIN_TRACING_V2": "false",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_defaults() -> dict[str, str]:
    """Set :data:`OFFLINE_DEFAULTS` where unset; return the variables this call set."""
    changed = {}
    for key, value in OFFLINE_DEFAULTS.items():
        if key not in os.environ:
            os.environ[key] = value
            changed[key] = value
    return changed
