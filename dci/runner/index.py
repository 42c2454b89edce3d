"""The app's functions as the host indexes them: `app.get_functions()`, settings resolved."""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

_SETTING_REFERENCE = re.compile(r"%([^%]+)%")
SUPPORTED_TRIGGERS = ("httpTrigger", "queueTrigger", "timerTrigger")
SUPPORTED_OUTPUTS = ("http", "queue")


class UnsupportedFunction(RuntimeError):
    """A function uses something the local runner cannot serve; the message names it."""


@dataclass(frozen=True)
class Binding:
    """One binding of a function, with `%SETTING%` references resolved."""

    name: str
    type: str
    direction: str
    props: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IndexedFunction:
    """A function, its trigger, and the output bindings the runner must flush after each call."""

    name: str
    call: Callable[..., Any]
    trigger: Binding
    outputs: tuple[Binding, ...]

    @property
    def queue_outputs(self) -> tuple[Binding, ...]:
        return tuple(b for b in self.outputs if b.type == "queue")


_built: weakref.WeakKeyDictionary[func.FunctionApp, list[func.Function]] = weakref.WeakKeyDictionary()
_built_lock = threading.Lock()


def host_functions(app: func.FunctionApp) -> list[func.Function]:
    """`app.get_functions()`, built once: a second call on the same app raises in azure-functions
    (it records names to reject duplicates), and the host, too, indexes an app once."""
    with _built_lock:
        if app not in _built:
            _built[app] = app.get_functions()
        return _built[app]


def index(app: func.FunctionApp, environ: Mapping[str, str] = os.environ) -> list[IndexedFunction]:
    """Every function of `app`, or UnsupportedFunction naming what the runner cannot serve."""
    functions = []
    for function in host_functions(app):
        name = function.get_function_name()
        bindings = [_binding(name, b.get_dict_repr(), environ) for b in function.get_bindings()]
        triggers = [b for b in bindings if b.type.endswith("Trigger")]
        if len(triggers) != 1 or triggers[0].type not in SUPPORTED_TRIGGERS:
            raise UnsupportedFunction(f"function {name!r}: trigger {[b.type for b in triggers]} is not served locally")
        others = [b for b in bindings if b is not triggers[0]]
        for binding in others:
            if binding.direction != "OUT" or binding.type not in SUPPORTED_OUTPUTS:
                raise UnsupportedFunction(
                    f"function {name!r}: {binding.direction} binding {binding.type!r} is not served locally")
        functions.append(IndexedFunction(name, function.get_user_function(), triggers[0], tuple(others)))
    return functions


def _binding(function: str, raw: Mapping[str, Any], environ: Mapping[str, str]) -> Binding:
    props = {key: _resolve(function, value, environ) for key, value in raw.items()}
    direction = getattr(props.pop("direction"), "name", None) or str(raw["direction"])
    return Binding(name=props.pop("name"), type=props.pop("type"), direction=direction.upper(), props=props)


def _resolve(function: str, value: Any, environ: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        setting = match.group(1)
        if setting not in environ:
            raise UnsupportedFunction(f"function {function!r} refers to app setting %{setting}%, which is not set")
        return environ[setting]

    return _SETTING_REFERENCE.sub(lookup, value)
