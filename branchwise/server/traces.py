"""Recent agent traces by id, for ``GET /v1/traces/{id}`` (bounded, in memory).

The id is the agent run's thread id, returned with every answer (``branchwise.trace_id``,
header ``X-Branchwise-Trace-Id``). A trace is kept with the index it came from and is only
shown to a caller allowed to use that index.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class TraceStore:
    """The last ``limit`` traces (oldest dropped first).

    Args:
        limit: traces kept.
    """

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._traces: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, trace_id: str, index: str, trace: dict[str, Any]) -> None:
        with self._lock:
            self._traces[trace_id] = (index, trace)
            self._traces.move_to_end(trace_id)
            while len(self._traces) > self.limit:
                self._traces.popitem(last=False)

    def get(self, trace_id: str) -> tuple[str, dict[str, Any]] | None:
        """``(index name, trace dict)``, or None when unknown or dropped."""
        with self._lock:
            return self._traces.get(trace_id)

    def __len__(self) -> int:
        return len(self._traces)
