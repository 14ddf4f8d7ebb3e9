"""API keys per index: a key for one index never opens another.

A request presents its key as ``Authorization: Bearer KEY`` (what OpenAI SDKs send) or
``X-API-Key: KEY``. For an index with keys:

* no key, or a key no index knows → :class:`~branchwise.server.errors.AuthError` (401);
* a valid key of *another* index → :class:`~branchwise.server.errors.Forbidden` (403);
* one of its keys → allowed.

An index served without keys is open (the server binds loopback by default). Keys are
compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from typing import Mapping, Sequence

from branchwise.server.errors import AuthError, Forbidden


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key of a request: the ``Bearer`` token, else ``X-API-Key``."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return api_key.strip() if api_key and api_key.strip() else None


def _matches(key: str, keys: Sequence[str]) -> bool:
    found = False
    for k in keys:  # no early exit: the time taken does not tell which key matched
        found |= hmac.compare_digest(key.encode(), k.encode())
    return found


class KeyRing:
    """The API keys of the served indexes.

    Args:
        keys: keys by index name (an index that is absent, or has none, is open).
    """

    def __init__(self, keys: Mapping[str, Sequence[str]]) -> None:
        self._keys = {name: tuple(ks) for name, ks in keys.items() if ks}

    def protected(self, index: str) -> bool:
        return index in self._keys

    def allows(self, index: str, key: str | None) -> bool:
        """Whether ``key`` may use ``index``."""
        keys = self._keys.get(index)
        return keys is None or (key is not None and _matches(key, keys))

    def check(self, index: str, key: str | None) -> None:
        """Raise unless ``key`` may use ``index`` (401: no or unknown key; 403: another index's key)."""
        if self.allows(index, key):
            return
        if key is None:
            raise AuthError(f"index {index!r} needs an API key.",
                            fix="send it as 'Authorization: Bearer KEY' (the OpenAI SDK's api_key).")
        if any(_matches(key, ks) for name, ks in self._keys.items() if name != index):
            raise Forbidden(f"this API key is not allowed to use index {index!r}.",
                            fix="use a key issued for this index.")
        raise AuthError("the API key is not valid.", fix="check the key you were given for this index.")
