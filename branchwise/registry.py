"""One registry per pluggable kind: names spelled once, factories loaded on use.

Each kind of backend or component (LLM and embedder backends, navigator scorers,
rerankers, compressors, flat retrievers, graph extractors) has one :class:`Registry`,
defined in a light module of the package that implements it
(``branchwise/models/registry.py``, ``branchwise/navigation/registry.py``, ...). The CLI's
``choices=``, the chat UI's dropdowns, the eval system names and the composition root all
read the names from there, so a name is written in exactly one place.

Factories are registered as ``"module:attribute"`` strings and imported only when an entry
is used, so listing the names (``branchwise --help``) never imports torch, Chroma or
llama.cpp. An entry may name the optional dependency (and the pip extra providing it) that
its factory needs: a missing one becomes a :class:`~branchwise.errors.MissingDependencyError`
that says what to install.

Add your own entry from your code (or a plugin) with :meth:`Registry.register`::

    from branchwise.navigation.registry import SCORERS
    SCORERS.register("mine", "my_package.scoring:make_my_scorer", "my domain scorer", needs=("llm",))
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from branchwise.errors import InputError, MissingDependencyError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Entry(Generic[F]):
    """One registered name.

    Attributes:
        name: the name users type (``--scorer yesno``, ``Settings(compression=...)``).
        target: the factory, or ``"module:attribute"`` naming it (imported on first use).
        description: one line for ``--help`` and the docs.
        needs: what the factory needs from the composition root (e.g. ``("llm",)``).
        requires: ``(import name, pip extra)`` of an optional dependency, checked on use.
        example: an example spec, for backends addressed as ``name:argument``.
    """

    name: str
    target: F | str
    description: str = ""
    needs: tuple[str, ...] = ()
    requires: tuple[str, str] | None = None
    example: str = ""

    def load(self) -> F:
        """The factory (importing its module, and checking the optional dependency, first)."""
        if self.requires is not None:
            package, extra = self.requires
            try:
                importlib.import_module(package)
            except ImportError as e:
                raise MissingDependencyError(package, extra, f"{self.name!r}") from e
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


@dataclass(slots=True)
class Registry(Generic[F]):
    """Named factories of one kind.

    Args:
        kind: what the entries are, for error messages ("navigator scorer").
        option: the option or field that takes these names, for error messages ("--scorer").
    """

    kind: str
    option: str = ""
    _entries: dict[str, Entry[F]] = field(default_factory=dict)

    def register(
        self,
        name: str,
        target: F | str,
        description: str = "",
        *,
        needs: tuple[str, ...] = (),
        requires: tuple[str, str] | None = None,
        example: str = "",
        replace: bool = False,
    ) -> Entry[F]:
        """Add an entry; registering a taken name needs ``replace=True``."""
        if not name or any(c.isspace() for c in name):
            raise InputError(f"{self.kind} name {name!r} is empty or has spaces.", fix="use a short identifier.")
        if name in self._entries and not replace:
            raise InputError(f"{self.kind} {name!r} is already registered.", fix="pick another name, or pass replace=True.")
        entry: Entry[F] = Entry(name, target, description, needs, requires, example or name)
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (tests and plugins that registered one)."""
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def get(self, name: str) -> Entry[F]:
        """The entry ``name``; an :class:`InputError` listing the choices otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            where = f" ({self.option})" if self.option else ""
            raise InputError(f"unknown {self.kind} {name!r}{where}.", fix=f"use one of: {', '.join(self._entries)}.") from None

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """``get(name).load()(*args, **kwargs)``."""
        return self.get(name).load()(*args, **kwargs)

    def help(self) -> str:
        """``name: description`` lines (for ``--help`` texts and docs)."""
        return "; ".join(f"{e.name}: {e.description}" if e.description else e.name for e in self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[F]]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
