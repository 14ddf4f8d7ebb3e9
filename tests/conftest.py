"""Shared fixtures: paths to ../shared/data, the real embedded models (session-scoped), and
the offline guarantee.

The whole session runs offline: entry-point defaults from :mod:`branchwise.offline` are
applied, and :mod:`tests.netguard` refuses every non-loopback connection or DNS lookup. Any
attempt fails the session (set ``BRANCHWISE_TEST_ALLOW_NET_ATTEMPTS=1`` to only report).

Real-model fixtures load once per session. Tests that use the 1.5B GGUF model are marked
``real_llm``; they are few and small (2-core CI).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from netguard import NetGuard  # noqa: E402

pytest_plugins = ["index_fixtures"]

_GUARD = NetGuard()


def pytest_configure(config: pytest.Config) -> None:
    from branchwise.offline import apply_offline_defaults

    apply_offline_defaults()
    _GUARD.install()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if _GUARD.attempts:
        terminalreporter.section("blocked network attempts")
        for a in sorted(set(_GUARD.attempts)):
            terminalreporter.write_line(a)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _GUARD.attempts and not os.environ.get("BRANCHWISE_TEST_ALLOW_NET_ATTEMPTS") and exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _torch_default_dtype_unchanged():  # type: ignore[no-untyped-def]
    """torch's default dtype is process-wide: a test (or the code under test) that leaves it
    changed corrupts every later test's tensors, far from the cause. Fail where it happens."""
    torch = sys.modules.get("torch")
    before = torch.get_default_dtype() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        after = torch.get_default_dtype()
        if before is None:
            before = torch.float32
        if after != before:
            torch.set_default_dtype(before)
            pytest.fail(f"torch's default dtype changed from {before} to {after} during this test")


def _shared_data() -> Path:
    env = os.environ.get("BRANCHWISE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    p = _shared_data()
    if not p.is_dir():
        pytest.fail(f"shared datasets not found at {p}; set BRANCHWISE_SHARED_DATA to ../shared/data")
    return p


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2 sentence-transformers embedder (real model, offline)."""
    from branchwise.models.factory import make_embedder

    return make_embedder("default")


@pytest.fixture(scope="session")
def real_llm():
    """The embedded Qwen2.5-Coder-1.5B-Instruct GGUF through llama-cpp-python (real model)."""
    from branchwise.models.factory import make_llm

    return make_llm("default")
