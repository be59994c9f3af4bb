"""Putting a strategy process together: instances from the config, their contexts, the engine, the callbacks.

``plan_instances`` loads, checks and compiles every configured strategy (the supervisor calls it before any
process starts, so a broken strategy is one clear error; the strategy process calls it again and finds the
compiled callbacks in the cache). ``StrategyRuntime`` builds the market view, one context per instance, the
feature kernels and the engine around an ``Outlet`` (where orders go) and a book source (seqlock words), and
drives the parts of the engine that run between loop slices: ``on_start``, the Python model hooks, halting an
instance whose callback raised. The pipeline's strategy process, the unit-test harness
(``hft.strategy.testing``) and a single-process backtest all build it the same way.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit, types

from hft.config import Config, SymbolConfig
from hft.risk.engine import RISK_REASON_NAMES
from hft.strategy.context import (
    CALLBACK_NAMES,
    CTL_HALTED,
    G_LOT,
    G_PRICE_DECIMALS,
    G_SIZE_DECIMALS,
    G_TICK,
    MAX_INSTANCES,
    N_CALLBACKS,
    N_G,
    Market,
    Outlet,
    StrategyContext,
    callback_sig,
    new_context,
    new_strategy_set,
    strategy_set_t,
)
from hft.strategy.engine import (
    E_CALL_INSTANCE,
    E_CALL_KIND,
    E_CLOCK,
    E_MODEL_INSTANCE,
    E_NEXT,
    LOOP_SIGNATURE,
    StrategyEngine,
    answer_entry,
    engine_t,
    feed_entry,
    halt_entry,
    loop_entry,
    new_engine,
    reports_entry,
    start_entry,
    timers_entry,
)
from hft.strategy.kernels import (
    N_FEATURES,
    configure_symbol,
    make_features,
    make_kernel_params,
    make_kernel_state,
)
from hft.strategy.loader import LoadedStrategy, Setup, StrategyError, load_strategy
from hft.validation import decimal_to_fixed
from shm_layout.counters import C_STRATEGY_FAULTS, W_COUNTERS, C
from shm_layout.records import exec_report_t, md_event_t


def _noop(ctx, symbol):
    """What the engine calls for a callback a strategy does not define."""
    return None


@dataclass
class InstanceSpec:
    """One strategy instance, resolved: its loaded strategy, parameters and symbols (ids)."""

    name: str
    strategy: LoadedStrategy
    params: dict[str, object]
    symbols: list[int]


def symbol_grid(symbols: list[SymbolConfig]) -> np.ndarray:
    """``int64[n, N_G]``: each symbol's tick, lot and decimals (the context's ``grid``)."""
    grid = np.zeros((len(symbols), N_G), np.int64)
    for index, symbol in enumerate(symbols):
        grid[index, G_TICK] = decimal_to_fixed(symbol.tick_size, symbol.price_decimals, f"{symbol.name}.tick_size")
        grid[index, G_LOT] = decimal_to_fixed(symbol.lot_size, symbol.size_decimals, f"{symbol.name}.lot_size")
        grid[index, G_PRICE_DECIMALS] = symbol.price_decimals
        grid[index, G_SIZE_DECIMALS] = symbol.size_decimals
    return grid


def plan_instances(config: Config, log: logging.Logger | None = None, compile: bool = True) -> list[InstanceSpec]:
    """Load, check and (unless ``compile`` is False) compile every configured instance's strategy; resolve its
    parameters and symbols.

    Raise ``StrategyError`` naming the strategy (and the callback or parameter) for anything wrong."""
    names = [s.name for s in config.symbols]
    instances = config.strategy.effective_instances()
    if len(instances) > MAX_INSTANCES:
        raise StrategyError(f"strategy.instances: at most {MAX_INSTANCES} instances, got {len(instances)}")
    loaded: dict[str, LoadedStrategy] = {}
    plan = []
    for instance in instances:
        if instance.module not in loaded:
            loaded[instance.module] = load_strategy(instance.module, config.strategy.boundscheck, log, compile)
        strategy = loaded[instance.module]
        params = strategy.resolve_params(dict(instance.params))
        plan.append(InstanceSpec(instance.name, strategy, params,
                                 [names.index(s) for s in (instance.symbols or names)]))
    return plan


def _entry(function, signature: tuple) -> Callable:
    """The compiled entry point of ``function`` for exactly ``signature`` (loaded from numba's cache when it is
    there). Calling it skips the dispatcher, whose typing would treat each callback as a type of its own and
    compile (and fail to cache) a specialization per strategy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        function.compile(signature)
    return function.overloads[signature].entry_point


class StrategyRuntime:
    """The engine and its contexts for a list of instances (see the module docstring).

    ``feature_window_ms``, ``vpin_bucket_volume`` (base units), ``vpin_buckets`` and ``surge_half_life_ms``
    configure the feature kernels; ``clock_fallback`` lets timers fire by the machine's clock in live runs.
    """

    def __init__(self, symbols: list[SymbolConfig], instances: list[InstanceSpec], outlet: Outlet,
                 snap_words: np.ndarray, risk: tuple[np.ndarray, np.ndarray, np.ndarray], proc: np.ndarray,
                 strategy_config, clock_fallback: bool, log: logging.Logger) -> None:
        self.log = log
        self.proc = proc
        self.symbols = symbols
        self.instances = instances
        self.names = [s.name for s in symbols]
        self.market = Market.allocate(symbol_grid(symbols), N_FEATURES)
        n = len(symbols)
        kparams = make_kernel_params(n)
        for index, symbol in enumerate(symbols):
            configure_symbol(
                kparams, index, window_ns=strategy_config.feature_window_ms * 1_000_000,
                bucket_volume=decimal_to_fixed(strategy_config.vpin_bucket_volume, symbol.size_decimals,
                                               "vpin_bucket_volume"),
                n_buckets=strategy_config.vpin_buckets,
                tick_size=decimal_to_fixed(symbol.tick_size, symbol.price_decimals, "tick_size"),
                surge_half_life_ns=strategy_config.surge_half_life_ms * 1_000_000,
            )
        self.market.features = make_features(n)
        owner = np.full(n, -1, np.int64)
        self.contexts: list[StrategyContext] = []
        self.models: list[Callable | None] = []
        for number, spec in enumerate(instances):
            mine = np.zeros(n, np.int64)
            for symbol in spec.symbols:
                mine[symbol] = 1
                owner[symbol] = number
            setup = spec.strategy.run_prepare(Setup(
                params=dict(spec.params), symbols=[self.names[s] for s in spec.symbols], all_symbols=self.names,
                log=log))
            context = new_context(
                number + 1, self.market, outlet, mine, spec.strategy.numeric_params(spec.params),
                len(spec.strategy.ints), len(spec.strategy.floats), _array(setup.data_i, np.int64),
                _array(setup.data_f, np.float64), setup.model_inputs, setup.model_outputs)
            for column, (_name, default) in enumerate(spec.strategy.ints):
                context.ints[:, column] = default
            for column, (_name, default) in enumerate(spec.strategy.floats):
                context.floats[:, column] = default
            self.contexts.append(context)
            self.models.append(setup.model)
            log.info("instance %d %r: %s on %s", number + 1, spec.name, spec.strategy.name,
                     ", ".join(self.names[s] for s in spec.symbols))
        self.engine: StrategyEngine = new_engine(
            self.market, (kparams, *make_kernel_state(n)), snap_words, risk, proc, owner, len(instances),
            clock_fallback)
        # pad to MAX_INSTANCES: the engine's tables have a fixed size (never called: no symbol is theirs)
        blank = new_context(0, self.market, outlet, np.zeros(n, np.int64), np.zeros(1), 0, 0)
        blank.ctl[CTL_HALTED] = 1
        self.ctxs = tuple(c.ref for c in self.contexts) + (blank.ref,) * (MAX_INSTANCES - len(self.contexts))
        noop = _noop_callback()
        table = []
        for number in range(MAX_INSTANCES):
            callbacks = instances[number].strategy.callbacks if number < len(instances) else [None] * N_CALLBACKS
            table.extend(callback if callback is not None else noop for callback in callbacks)
        self.callbacks = tuple(table)
        self.strategies = new_strategy_set(self.ctxs, self.callbacks)  # what the entry points take
        self.faults = 0
        self._entries: dict[str, Callable] = {}

    def _entry_of(self, name: str) -> Callable:
        """The compiled entry point ``name``: the pipeline uses start/answer/halt and its loop; the in-process
        drivers (the unit-test harness, a backtest) feed/reports/timers too. Each costs seconds to compile on a
        first run, so none is compiled before it is needed."""
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = _entry(*_entry_points()[name])
        return entry

    def compile_entries(self, everything: bool = False) -> None:
        """Compile (or load) the entry points the pipeline uses between loop slices; ``everything``: the
        in-process drivers' too (``hft warm``)."""
        for name in ("start", "answer", "halt") + (("timers", "feed", "reports") if everything else ()):
            self._entry_of(name)

    def _start(self, *args):
        return self._entry_of("start")(*args)

    def _answer(self, *args):
        return self._entry_of("answer")(*args)

    def _halt(self, *args):
        return self._entry_of("halt")(*args)

    def _timers(self, *args):
        return self._entry_of("timers")(*args)

    def _feed(self, *args):
        return self._entry_of("feed")(*args)

    def _reports(self, *args):
        return self._entry_of("reports")(*args)

    # -------------------------------------------------------------------------------------------- driving

    def loop_entry(self) -> Callable:
        """The pipeline loop compiled for these types: ``entry(engine, io, strategies, max_run_ns)``."""
        return _entry(loop_entry, LOOP_SIGNATURE)

    @property
    def clock(self) -> int:
        return int(self.engine.words[E_CLOCK])

    def start(self) -> None:
        """``on_start`` for every instance's symbols (and any model answers it asks for)."""
        for number in range(len(self.instances)):
            self._call(self._start, self.engine.ref, self.strategies, number)
            self.answer_models()

    def answer_models(self) -> None:
        """Run the Python model hook of every instance waiting for one, until none asks again."""
        while int(self.engine.words[E_MODEL_INSTANCE]) >= 0:
            number = int(self.engine.words[E_MODEL_INSTANCE])
            context = self.contexts[number]
            model = self.models[number]
            if model is None:
                self.halt(number, "it called request_model but its prepare() installs no model")
                continue
            try:
                model(context.model_in, context.model_out)
            except Exception as exc:  # a user's model: stop that instance, not the process
                self.halt(number, f"its model hook raised {type(exc).__name__}: {exc}")
                continue
            self._call(self._answer, self.engine.ref, self.strategies)

    def feed(self, events: np.ndarray, md_start: int = 0) -> None:
        """Apply ``events`` (MD_EVENT records) in order, as the pipeline's loop would; ``md_start`` is the
        md.events sequence of the first. Model requests are answered on the way; a callback that raises halts
        its instance (the record that caused it counts as consumed) and the rest carries on."""
        k = 0
        while k < len(events):
            done = self._call(self._feed, self.engine.ref, self.strategies, events, k, len(events),
                              md_start)
            k = int(self.engine.words[E_NEXT]) if done is None else done
            self.answer_models()

    def reports(self, reports: np.ndarray) -> None:
        """Apply execution reports (EXEC_REPORT records) in order, as ``feed`` does market data."""
        k = 0
        while k < len(reports):
            done = self._call(self._reports, self.engine.ref, self.strategies, reports, k, len(reports))
            k = int(self.engine.words[E_NEXT]) if done is None else done
            self.answer_models()

    def fire_timers(self, until_ts: int) -> None:
        """Fire the timers due at or before ``until_ts`` (venue ns)."""
        while self._call(self._timers, self.engine.ref, self.strategies, until_ts):
            self.answer_models()
        self.answer_models()

    def _call(self, function: Callable, *args: object) -> int | None:
        """Run a jitted engine call; if a callback raised, halt its instance and return None."""
        try:
            return function(*args)
        except Exception as exc:
            if not self.fault(exc):
                raise
            return None

    def fault(self, exc: BaseException) -> bool:
        """An engine call raised ``exc``: halt the instance whose callback it was and return True, or return
        False when no callback was running (a bug of the engine: let it stop the process)."""
        number = int(self.engine.words[E_CALL_INSTANCE])
        if number < 0:
            return False
        kind = int(self.engine.words[E_CALL_KIND])
        self.halt(number, f"{CALLBACK_NAMES[kind]} raised {type(exc).__name__}: {exc}")
        return True

    def halt(self, number: int, why: str) -> None:
        """Stop calling instance ``number`` back and cancel its orders (the rest of the process carries on)."""
        self.faults += 1
        self.proc[W_COUNTERS + C_STRATEGY_FAULTS] += 1
        spec = self.instances[number]
        sent = self._halt(self.engine.ref, self.strategies, number)
        self.log.error("strategy instance %r (%s) halted: %s; %d cancel command(s) sent for its open orders; the "
                       "other instances carry on", spec.name, spec.strategy.name, why, sent)

    def restore_account(self, latest: dict[int, np.ndarray]) -> None:
        """A restarted process: each symbol's account row from the broker's newest report of it."""
        from hft.strategy.context import ACC_ENTRY_NOTIONAL, ACC_FEES, ACC_MARK_X2, ACC_POSITION, ACC_REALIZED

        for symbol, report in latest.items():
            row = self.market.account[symbol]
            row[ACC_POSITION] = report["position"]
            row[ACC_ENTRY_NOTIONAL] = report["entry_notional"]
            row[ACC_REALIZED] = report["realized_pnl"]
            row[ACC_FEES] = report["total_fees"]
            row[ACC_MARK_X2] = report["mid_x2"]
            self.engine.words[E_CLOCK] = max(int(self.engine.words[E_CLOCK]), int(report["ts_exch"]))


def risk_reason_counters() -> np.ndarray:
    """Map each risk reason code to the shared-memory counter that counts its denials."""
    counters = np.zeros(len(RISK_REASON_NAMES), np.int64)
    for code, name in enumerate(RISK_REASON_NAMES):
        counters[code] = C[f"risk_{name}"] if code else C["risk_rejects"]
    return counters


def _entry_points() -> dict[str, tuple]:
    """The engine's entry points from Python and the exact types they are compiled for."""
    events = types.Array(md_event_t, 1, "C")
    reports = types.Array(exec_report_t, 1, "C")
    i64 = types.int64
    return {
        "start": (start_entry, (engine_t, strategy_set_t, i64)),
        "answer": (answer_entry, (engine_t, strategy_set_t)),
        "halt": (halt_entry, (engine_t, strategy_set_t, i64)),
        "timers": (timers_entry, (engine_t, strategy_set_t, i64)),
        "feed": (feed_entry, (engine_t, strategy_set_t, events, i64, i64, i64)),
        "reports": (reports_entry, (engine_t, strategy_set_t, reports, i64, i64)),
    }


def _noop_callback():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return njit(callback_sig, cache=True)(_noop)


def _array(values, dtype) -> np.ndarray | None:
    return None if values is None else np.ascontiguousarray(np.asarray(values, dtype).ravel())




