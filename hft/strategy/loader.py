"""Loading a strategy: find the module, check its callbacks and parameters, compile it, cache it correctly.

``load_strategy(spec)`` takes what ``[strategy] module`` says: a built-in name (``imbalance``, ``rules``,
``onnx``), a dotted module name importable from the working directory, or a path to a ``.py`` file anywhere.
It refuses, with one ``StrategyError`` naming the module and the callback, a module that does not exist or
fails to import, an ``on_*`` function that is not a known callback (a typo would otherwise never be called), a
callback without the ``(ctx, symbol)`` signature, a strategy with no market callback, and a callback that does
not compile. ``LoadedStrategy.resolve_params`` refuses unknown parameter keys and values of the wrong kind.

Compilation and its cache. Every callback is compiled once, for the one signature the engine calls
(``hft.strategy.context.callback_sig``), into numba's on-disk cache; the engine itself is compiled for function
pointers, so editing a strategy recompiles that strategy's callbacks only, never the engine, the feed, the broker
or persistence. numba checks only the modification time of the file a function lives in, so a change to a
helper module a callback inlines would go unnoticed; the callbacks are therefore cached in a directory keyed on
the project's sources *and* on every local module the strategy reaches (its own file, modules it imports or
takes functions from, transitively; installed packages are keyed by the project's digest already). A changed
helper gives a new directory and a fresh compile.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import logging
import os
import re
import sys
import sysconfig
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from hft.strategy.api import declaration_of
from hft.strategy.context import CALLBACK_NAMES, CB_BBO, CB_BOOK, CB_TIMER, CB_TRADE, callback_sig

BUILTINS = {
    "imbalance": "hft.strategy.builtin.imbalance",
    "rules": "hft.strategy.builtin.rules",
    "onnx": "hft.strategy.builtin.onnx",
}
MARKET_CALLBACKS = (CB_BOOK, CB_BBO, CB_TRADE, CB_TIMER)
_PROJECT = Path(__file__).resolve().parent.parent.parent
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_ERROR_LINES = 25


class StrategyError(ValueError):
    """A strategy cannot be used; the message names the module (and the callback or parameter)."""


@dataclass
class Setup:
    """What a strategy's optional Python hook ``prepare(setup)`` receives, once per instance, before the loop.

    It may set ``data_i`` / ``data_f`` (1-D arrays the callbacks read as ``ctx.data_i`` / ``ctx.data_f``) and
    install a model: ``model(inputs, outputs)`` fills ``outputs`` (``ctx.model_out``) from ``inputs``
    (``ctx.model_in``) in Python, called when a callback used ``request_model``; ``model_inputs`` and
    ``model_outputs`` size the buffers. Raise ``ValueError`` for a bad parameter: it becomes the start-up error.
    """

    params: dict[str, Any]
    symbols: list[str]  # the symbols this instance trades
    all_symbols: list[str]  # every symbol of the pipeline, in symbol-id order
    log: logging.Logger
    data_i: np.ndarray | None = None
    data_f: np.ndarray | None = None
    model: Callable[[np.ndarray, np.ndarray], None] | None = None
    model_inputs: int = 0
    model_outputs: int = 0


@dataclass
class LoadedStrategy:
    """A strategy module, checked and compiled."""

    spec: str  # what the config said
    name: str  # a short name for messages: the file or module name
    module: ModuleType
    callbacks: list[Any | None]  # compiled dispatchers, indexed by CB_*; None: not defined
    params: dict[str, Any]  # declared parameters and their defaults, in declaration order
    ints: list[tuple[str, int]]  # declared int state (name, default), in ctx.ints column order
    floats: list[tuple[str, float]]
    prepare: Callable[[Setup], None] | None
    cache_dir: str
    functions: list[Callable | None] = field(default_factory=list)  # the Python callbacks, indexed by CB_*
    compile_seconds: float = 0.0
    compiled: list[str] = field(default_factory=list)  # callbacks compiled now (not loaded from the cache)

    def compile(self, boundscheck: bool = True, log: logging.Logger | None = None) -> LoadedStrategy:
        """Compile the callbacks (or load them from the cache) unless done; raise ``StrategyError`` naming the
        callback that does not compile."""
        if any(c is not None for c in self.callbacks) or not any(f is not None for f in self.functions):
            return self
        started = time.perf_counter()
        if log is not None:
            log.info("strategy %s: loading its callbacks (numba cache %s)", self.name, self.cache_dir)
        self.callbacks, self.compiled = compile_callbacks(self.functions, self.name, self.cache_dir, boundscheck)
        self.compile_seconds = time.perf_counter() - started
        if log is not None and self.compiled:
            log.info("strategy %s: compiled %s in %.1f s", self.name, ", ".join(self.compiled), self.compile_seconds)
        return self

    def resolve_params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The declared defaults with ``overrides`` applied; raise ``StrategyError`` for an unknown key or a value
        of another kind than the default's."""
        values = dict(self.params)
        for key, value in overrides.items():
            if key not in self.params:
                close = difflib.get_close_matches(key, list(self.params), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                declared = ", ".join(self.params) or "none"
                raise StrategyError(f"strategy {self.name}: unknown parameter {key!r}{hint} (declared: {declared})")
            values[key] = _coerce(self.name, key, self.params[key], value)
        return values

    def numeric_params(self, values: dict[str, Any]) -> np.ndarray:
        """The numeric parameters as ``ctx.params`` holds them (float64, declaration order)."""
        return np.array([float(v) for v in values.values() if isinstance(v, bool | int | float)], np.float64)

    def run_prepare(self, setup: Setup) -> Setup:
        """Call the strategy's ``prepare`` hook (if any); its ``ValueError`` becomes a ``StrategyError``."""
        if self.prepare is not None:
            try:
                self.prepare(setup)
            except (ValueError, TypeError, OSError) as exc:
                raise StrategyError(f"strategy {self.name}: {exc}") from None
        return setup


def _coerce(strategy: str, key: str, default: Any, value: Any) -> Any:
    where = f"strategy {strategy}: parameter {key!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise StrategyError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise StrategyError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise StrategyError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise StrategyError(f"{where} must be a string, got {value!r}")
        return value
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StrategyError(f"{where} must be a list of strings, got {value!r}")
    return list(value)


def _import(spec: str) -> tuple[ModuleType, str]:
    """Import the module ``spec`` names; return it and a short name for messages."""
    target = BUILTINS.get(spec, spec)
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise StrategyError(f"strategy module {spec!r}: no such file {path}")
        # a stable module name per file: numba's cache and the spawn children find the same one
        digest = hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()
        name = f"hft_strategy_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
        if name in sys.modules:
            return sys.modules[name], path.name
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise StrategyError(f"strategy module {spec!r}: cannot load {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise StrategyError(f"strategy {path.name}: importing it failed: {_first_line(exc)}") from None
        return module, path.name
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise StrategyError(f"strategy module {spec!r}: no module named {exc.name!r} (a built-in: "
                                f"{', '.join(BUILTINS)}; or a dotted module name; or a path to a .py file)") from None
        raise StrategyError(f"strategy {spec}: importing it failed: {_first_line(exc)}") from None
    except Exception as exc:
        raise StrategyError(f"strategy {spec}: importing it failed: {_first_line(exc)}") from None
    return module, spec


def _first_line(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _is_project_or_installed(path: Path) -> bool:
    text = str(path)
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {sys.prefix, sys.base_prefix}
    if any(text.startswith(str(root)) for root in roots if root):
        return True
    return any(path.is_relative_to(_PROJECT / package) for package in ("hft", "procs", "shm_layout"))


def local_sources(module: ModuleType) -> list[Path]:
    """The strategy's own file and every local (not installed, not this project's) module it reaches through its
    globals: imported modules and the modules of functions it imported, transitively."""
    found: list[Path] = []
    seen: set[str] = set()
    stack = [module]
    while stack:
        current = stack.pop()
        if current.__name__ in seen:
            continue
        seen.add(current.__name__)
        file = getattr(current, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if current is not module and _is_project_or_installed(path):
            continue
        found.append(path)
        for value in vars(current).values():
            owner = value if isinstance(value, ModuleType) else None
            if owner is None:
                function = getattr(value, "py_func", value)  # a numba dispatcher: its Python function
                owner = sys.modules.get(getattr(function, "__module__", None) or "")
            if owner is not None and owner.__name__ not in seen:
                stack.append(owner)
    return sorted(set(found))


def cache_dir_for(module: ModuleType) -> str:
    """numba's cache directory for this strategy: keyed on the project's sources and on the strategy's own."""
    from shm_layout.numba_cache import sources_digest

    digest = hashlib.blake2b(digest_size=8)
    digest.update(sources_digest().encode())
    for path in local_sources(module):
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    base = os.environ.get("HFT_STRATEGY_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hft" / "strategies")
    return str(Path(base) / digest.hexdigest())


def _callback_functions(module: ModuleType, name: str) -> list[Callable | None]:
    """The module's callbacks by ``CB_*`` (defined there or imported: several built-ins share theirs)."""
    functions: list[Callable | None] = [None] * len(CALLBACK_NAMES)
    for attr, value in vars(module).items():
        if not attr.startswith("on_"):
            continue
        function = getattr(value, "py_func", value)  # a function the user @njit-ed: take its Python source
        if not inspect.isfunction(function):
            continue
        if attr not in CALLBACK_NAMES:
            close = difflib.get_close_matches(attr, CALLBACK_NAMES, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise StrategyError(f"strategy {name}: {attr} is not a callback{hint} (callbacks: "
                                f"{', '.join(CALLBACK_NAMES)})")
        parameters = list(inspect.signature(function).parameters.values())
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(parameters) != 2 or len(positional) != 2:
            raise StrategyError(f"strategy {name}: {attr}{inspect.signature(function)} must take exactly "
                                f"(ctx, symbol)")
        functions[CALLBACK_NAMES.index(attr)] = function
    if not any(functions[kind] is not None for kind in MARKET_CALLBACKS):
        raise StrategyError(f"strategy {name}: defines none of on_book, on_bbo, on_trade, on_timer: it would never "
                            f"act")
    return functions


def _declarations(module: ModuleType, name: str) -> tuple[dict[str, Any], list, list]:
    params: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    for value in vars(module).values():
        declared = declaration_of(value)
        if declared is None:
            continue
        kind, defaults = declared
        if kind == "params":
            if params is not None and params != defaults:
                raise StrategyError(f"strategy {name}: declare_params is used twice")
            params = defaults
        else:
            if state is not None and state != defaults:
                raise StrategyError(f"strategy {name}: declare_state is used twice")
            state = defaults
    state = state or {}
    ints = [(k, v) for k, v in state.items() if isinstance(v, int)]
    floats = [(k, float(v)) for k, v in state.items() if isinstance(v, float)]
    return params or {}, ints, floats


def _compile_error(name: str, callback: str, exc: BaseException) -> StrategyError:
    text = _ANSI.sub("", str(exc))
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_ERROR_LINES:
        lines = [*lines[:MAX_ERROR_LINES], f"... ({len(lines) - MAX_ERROR_LINES} more lines)"]
    body = "\n    ".join(lines)
    hint = ""
    if "Cannot determine Numba type of <class 'function'>" in text:
        hint = ("\n  hint: a helper function the callbacks call must be compiled too: decorate it with @jit "
                "(from hft.strategy.api)")
    return StrategyError(f"strategy {name}: {callback} failed to compile ({type(exc).__name__}):\n    {body}{hint}")


def compile_callbacks(functions: list[Callable | None], name: str, cache_dir: str,
                      boundscheck: bool) -> tuple[list[Any | None], list[str]]:
    """Compile each defined callback for the engine's signature into ``cache_dir``; return the dispatchers and
    the names that were compiled rather than loaded from the cache."""
    from numba import njit
    from numba.core import config
    from numba.core.errors import NumbaError

    previous = config.CACHE_DIR
    config.CACHE_DIR = cache_dir  # read when a dispatcher sets up its cache (at decoration)
    compiled: list[Any | None] = [None] * len(functions)
    fresh: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba's "first-class function type feature is experimental"
            for kind, function in enumerate(functions):
                if function is None:
                    continue
                try:
                    dispatcher = njit(callback_sig, cache=True, boundscheck=boundscheck)(function)
                except NumbaError as exc:
                    raise _compile_error(name, CALLBACK_NAMES[kind], exc) from None
                except Exception as exc:  # numba's lowering raises plain errors too
                    raise _compile_error(name, CALLBACK_NAMES[kind], exc) from None
                if sum(dispatcher.stats.cache_misses.values()):
                    fresh.append(CALLBACK_NAMES[kind])
                compiled[kind] = dispatcher
    finally:
        config.CACHE_DIR = previous
    return compiled, fresh


def load_strategy(spec: str, boundscheck: bool = True, log: logging.Logger | None = None,
                  compile: bool = True) -> LoadedStrategy:
    """Import and check the strategy ``spec`` names, and compile it unless ``compile`` is False (the checks
    that need no compiler come first, so a supervisor can refuse a bad strategy at once and compile it while
    other processes start)."""
    module, name = _import(spec)
    functions = _callback_functions(module, name)
    params, ints, floats = _declarations(module, name)
    prepare = getattr(module, "prepare", None)
    if prepare is not None and not callable(prepare):
        raise StrategyError(f"strategy {name}: prepare must be a function prepare(setup)")
    loaded = LoadedStrategy(spec=spec, name=name, module=module, callbacks=[None] * len(functions), params=params,
                            ints=ints, floats=floats, prepare=prepare, cache_dir=cache_dir_for(module),
                            functions=functions)
    return loaded.compile(boundscheck, log) if compile else loaded
