"""Per-request options: a small, validated set of :meth:`branchwise.Settings.replace` changes.

A request may change how the agent searches and how much it spends, never what the server
loads or opens (models, stores, paths, the index build)::

    {"scorer": "yesno", "graph_route": false,
     "agent": {"max_rounds": 1, "plan": false, "context_budget_tokens": 256},
     "navigator": {"beam": 3, "iterations": 12},
     "compression": {"mode": "none"}}

Names of pluggable parts are checked against their registries (``SCORERS``,
``COMPRESSORS``, the retrieval routes), every value by the component's own config
(``AgentConfig`` etc.), and the costly ones against the ceilings of :data:`TUNABLE`.
"""

from __future__ import annotations

import json
import typing
from typing import Any, Literal, Mapping

from branchwise.errors import InputError

#: per component: the fields a request may set, and the highest value allowed (None: any valid value)
TUNABLE: dict[str, dict[str, float | None]] = {
    "agent": {"max_rounds": 4, "max_llm_calls": 24, "max_prompt_tokens": 32_000, "retrieval": None, "graph": None,
              "k": 12, "max_subqueries": 4, "plan": None, "distill": None, "feedback": None,
              "sufficiency_threshold": None, "gap_query": None, "context_budget_tokens": 4096,
              "answer_max_tokens": 1024, "answer_style": None},
    "navigator": {"beam": 8, "iterations": 40},
    "compression": {"mode": None},
}
#: top-level settings a request may set
TOP_LEVEL = ("scorer", "graph_route")


def _check_names(changes: Mapping[str, Any]) -> None:
    from branchwise.agents.config import retrieval_routes
    from branchwise.compression.registry import COMPRESSORS
    from branchwise.navigation.registry import SCORERS

    if "scorer" in changes:
        SCORERS.get(str(changes["scorer"]))
    if "mode" in changes.get("compression", {}):
        COMPRESSORS.get(str(changes["compression"]["mode"]))
    route = changes.get("agent", {}).get("retrieval")
    if route is not None and route not in retrieval_routes():
        raise InputError(f"unknown retrieval route {route!r}.", fix=f"use one of: {', '.join(retrieval_routes())}.")


def settings_changes(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The validated ``Settings.replace`` changes of a request's ``options``.

    Raises:
        InputError: an option that may not be set, a value over its ceiling, or an unknown name.
    """
    changes: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if value is None:
            continue
        if key in TOP_LEVEL:
            if not isinstance(value, bool if key == "graph_route" else str):
                raise InputError(f"option {key}={value!r} is not valid.",
                                 fix="graph_route is true or false; scorer is a scorer name.")
            changes[key] = value
        elif key in TUNABLE:
            if not isinstance(value, Mapping):
                raise InputError(f"option {key!r} must be an object of fields.", fix=f'e.g. "{key}": {{...}}.')
            allowed = TUNABLE[key]
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise InputError(f"option {key}.{unknown[0]} cannot be set per request.",
                                 fix=f"settable {key} fields: {', '.join(allowed)}.")
            for field, cap in allowed.items():
                v = value.get(field)
                if cap is not None and isinstance(v, (int, float)) and not isinstance(v, bool) and v > cap:
                    raise InputError(f"option {key}.{field}={v} is over this server's limit of {cap:g}.",
                                     fix=f"ask for {key}.{field} <= {cap:g}.")
            if value:
                changes[key] = dict(value)
        else:
            raise InputError(f"option {key!r} cannot be set per request.",
                             fix=f"settable options: {', '.join([*TOP_LEVEL, *TUNABLE])}.")
    _check_names(changes)
    return changes


def _hint(cls: type, name: str) -> Any:
    """The resolved type of field ``name`` (None when it cannot be resolved)."""
    import sys

    annotation = cls.__annotations__.get(name)
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, vars(sys.modules[cls.__module__]), {"Literal": Literal})  # noqa: S307 (our own source)
    except Exception:  # a name imported only for type checkers
        return None


def _check_types(component: str, config: Any, fields: Mapping[str, Any]) -> None:
    """Each value has its field's type (a ``Literal`` field: one of its values)."""
    for name, value in fields.items():
        hint = _hint(type(config), name)
        if typing.get_origin(hint) is Literal:
            ok = value in typing.get_args(hint)
            want = " | ".join(map(repr, typing.get_args(hint)))
        elif hint in (bool, int, str):
            ok = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
            want = hint.__name__
        elif hint is float:
            ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        else:
            continue
        if not ok:
            raise InputError(f"option {component}.{name}={value!r} is not valid.", fix=f"use {want}.")


def apply_options(settings: Any, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    """``settings`` with the request's options, and a stable key of those options ("" for none).

    Raises:
        InputError: as :func:`settings_changes`, or a value the component's config refuses.
    """
    changes = settings_changes(options)
    if not changes:
        return settings, ""
    for component in TUNABLE:
        if component in changes:
            _check_types(component, getattr(settings, component), changes[component])
    try:
        changed = settings.replace(**changes)
    except (TypeError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"invalid option value: {e}.", fix="check the types of the options you sent.") from e
    return changed, json.dumps(changes, sort_keys=True)
