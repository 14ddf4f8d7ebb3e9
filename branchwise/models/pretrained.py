"""Loading transformers checkpoints safely in a threaded process.

While ``from_pretrained`` builds a model, transformers sets torch's *process-wide* default
dtype (to the checkpoint's own dtype under ``dtype="auto"``, its default since v5) and restores
the previous one afterwards. Two loads at once in different threads interleave: one "restores"
the other's temporary dtype, and every tensor the process creates afterwards is, e.g., float16
(a server answering its first requests in parallel, a Gradio app, Dask workers in threads).
Every branchwise load goes through :func:`from_pretrained`: one lock, and an explicit dtype.
"""

from __future__ import annotations

import threading
from typing import Any

_LOAD_LOCK = threading.Lock()


def from_pretrained(cls: Any, ref: str, dtype: Any = "float32", **kwargs: Any) -> Any:
    """``cls.from_pretrained(ref, dtype=dtype, **kwargs)`` under the process-wide load lock.

    Args:
        cls: a transformers auto class (``AutoModelForSequenceClassification``, ...).
        ref: a local folder or a cached hub id.
        dtype: the dtype to build in (a ``torch.dtype`` or its name); ``"float32"`` by default,
            so a float16 checkpoint is upcast for CPU inference instead of running in half precision.
        kwargs: passed through (``local_files_only``, ``device_map``, ``num_labels``, ...).
    """
    import torch

    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    with _LOAD_LOCK:
        before = torch.get_default_dtype()
        try:
            return cls.from_pretrained(ref, dtype=dtype, **kwargs)
        finally:
            torch.set_default_dtype(before)  # whatever happened inside, the process default is unchanged
