"""A process-wide network guard for the test session: only loopback is reachable.

Every test runs with outbound connections and DNS lookups of non-local hosts refused, so a
library that tries to download or phone home (tiktoken, Chroma telemetry, HF hub, Gradio
analytics, LangSmith) fails loudly here instead of silently depending on the network.
Attempts are recorded; the session fails if any were made (see conftest.py).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass, field

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host)
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback or ipaddress.ip_address(host.split("%")[0]).is_unspecified
    except ValueError:
        return False


@dataclass
class NetGuard:
    attempts: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo
        guard = self

        def _check(addr: object, what: str) -> None:
            host = addr[0] if isinstance(addr, tuple) and addr else None
            if isinstance(addr, (str, bytes)):  # AF_UNIX path
                return
            if not _is_local(host):
                with guard._lock:
                    guard.attempts.append(f"{what} {addr!r}")
                raise OSError(f"network access to {addr!r} is blocked in tests (offline guarantee)")

        def connect(sock: socket.socket, addr: object) -> None:  # type: ignore[override]
            _check(addr, "connect")
            return real_connect(sock, addr)

        def connect_ex(sock: socket.socket, addr: object) -> int:  # type: ignore[override]
            _check(addr, "connect_ex")
            return real_connect_ex(sock, addr)

        def getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            if not _is_local(host):
                with guard._lock:
                    guard.attempts.append(f"getaddrinfo {host!r}")
                raise socket.gaierror(socket.EAI_NONAME, f"DNS lookup of {host!r} blocked in tests (offline guarantee)")
            return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
