"""transformers backend (``hf:/path/or/id``) — placeholder, filled in below."""

from __future__ import annotations

import os

_HF_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def ensure_hf_offline() -> None:
    """Make Hugging Face libraries offline for this process unless the user said otherwise.

    huggingface_hub reads ``HF_HUB_OFFLINE`` once, at import, and without it a hub id retries
    for 23-70 s before failing (see OFFLINE.md). Every HF load in branchwise also passes
    ``local_files_only=True``; this closes the remaining doors (telemetry, model-card
    lookups) when called before the first import. ``setdefault`` keeps an explicit user
    setting.
    """
    for key, value in _HF_OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
