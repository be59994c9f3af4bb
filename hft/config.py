"""Pipeline configuration: TOML on disk, validated by msgspec into frozen structs with documented defaults.

Every key has a default, so an empty file (or no file) runs the offline simulator pipeline. Unknown keys are
errors: a typo in a risk limit must not silently fall back to a default.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from hft.risk.config import RiskConfig
from hft.validation import ConfigError, decimal_to_fixed, parse_decimal, require

WaitName = Literal["busy-spin", "spin-yield", "spin-sleep"]




class SymbolConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A traded symbol: fixed-point scales and grid. price_int = price * 10**price_decimals."""

    name: str
    price_decimals: int = 2
    size_decimals: int = 8  # Binance prints 8 decimals; real depth data carries sizes like 25.42618900
    tick_size: str = "0.01"
    lot_size: str = "0.00001"
    sim_start_price: str = "60000.00"  # only used by the simulator
    # sanity bounds on market data (outliers are counted and dropped before the strategy or the broker)
    price_band_pct: float = 10.0  # bookTicker and trade prices this far from the book's last good mid (0: off)
    max_size: str = "0"  # largest trade, bookTicker or book-level size in base units (0: no cap)

    def __post_init__(self) -> None:
        require(self.name.isalnum() and self.name.isupper(), f"symbols.name: {self.name!r} must be like BTCUSDT")
        require(0 <= self.price_decimals <= 12, f"{self.name}: price_decimals must be 0..12")
        require(0 <= self.size_decimals <= 12, f"{self.name}: size_decimals must be 0..12")
        require(decimal_to_fixed(self.tick_size, self.price_decimals, f"{self.name}.tick_size") > 0,
                f"{self.name}: tick_size must be positive")
        require(decimal_to_fixed(self.lot_size, self.size_decimals, f"{self.name}.lot_size") > 0,
                f"{self.name}: lot_size must be positive")
        require(decimal_to_fixed(self.sim_start_price, self.price_decimals, f"{self.name}.sim_start_price") > 0,
                f"{self.name}: sim_start_price must be positive")
        require(math.isfinite(self.price_band_pct) and 0 <= self.price_band_pct <= 1000,
                f"{self.name}: price_band_pct must be in 0..1000 (0: no band)")
        require(decimal_to_fixed(self.max_size, self.size_decimals, f"{self.name}.max_size") >= 0,
                f"{self.name}: max_size must be >= 0 (0: no cap)")


def _default_symbols() -> list[SymbolConfig]:
    return [
        SymbolConfig(name="BTCUSDT", sim_start_price="60000.00", max_size="10000"),
        SymbolConfig(name="ETHUSDT", lot_size="0.0001", sim_start_price="2500.00", max_size="100000"),
    ]


class SourceConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where market data comes from. ``sim`` (default) starts the built-in exchange simulator on loopback;
    ``replay`` reads a recorded file (``hft record`` output, or the hftbacktest / cryptofeed formats)."""

    kind: Literal["sim", "binance", "url", "replay"] = "sim"
    ws_url: str = ""  # for kind = "url": e.g. ws://127.0.0.1:8765
    rest_url: str = ""  # for kind = "url": e.g. http://127.0.0.1:8765
    sim_seed: int = 7
    sim_events_per_second: float = 2000.0
    sim_volatility: Literal["calm", "normal", "volatile"] = "normal"  # the simulator's price regime preset
    depth_limit: int = 1000  # REST snapshot depth (Binance allows 5..5000)
    replay_path: str = ""  # for kind = "replay"
    replay_more: list[str] = msgspec.field(default_factory=list)  # recordings replayed after replay_path, in order
    replay_speed: float = 0.0  # 0: as fast as possible; 1.0: recorded pace; 10.0: ten times faster
    lockstep: bool = True  # replay: publish the next frame only when strategy and broker handled the last one
    no_data_timeout_s: float = 10.0  # live: a connection silent this long is closed and reconnected (0: never)
    # the venue time E of a diff or trade further than this from this machine's clock (a replay: the recording's
    # receive time) is an outlier, counted and dropped (0: no bound)
    max_clock_drift_ms: int = 60_000

    def replay_files(self) -> list[str]:
        """The recordings a replay reads, in order: one stream (a book continues across files)."""
        return [self.replay_path, *self.replay_more]

    def __post_init__(self) -> None:
        require(self.kind != "replay" or bool(self.replay_path), "source.replay_path is required for a replay")
        require(self.replay_speed >= 0, "source.replay_speed must be >= 0 (0: as fast as possible)")
        require(self.kind != "url" or bool(self.ws_url and self.rest_url), "source.ws_url and rest_url required")
        if self.kind == "url":  # checked here: a wrong scheme would otherwise fail on every reconnect
            require(self.ws_url.startswith(("ws://", "wss://")) and len(self.ws_url.split("://", 1)[1]) > 0,
                    f"source.ws_url {self.ws_url!r}: a WebSocket URL (ws://host:port or wss://...)")
            require(self.rest_url.startswith(("http://", "https://")) and len(self.rest_url.split("://", 1)[1]) > 0,
                    f"source.rest_url {self.rest_url!r}: an HTTP URL (http://host:port or https://...)")
        require(5 <= self.depth_limit <= 5000, "source.depth_limit must be in 5..5000")
        require(math.isfinite(self.no_data_timeout_s) and self.no_data_timeout_s >= 0,
                "source.no_data_timeout_s must be a finite number of seconds >= 0 (0: no watchdog)")
        require(0 <= self.max_clock_drift_ms <= 10 * 365 * 86_400_000,
                "source.max_clock_drift_ms must be >= 0 (0: no drift bound)")


class ProcessConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Placement of one process: the CPU core to pin to (-1: do not pin), its idle wait strategy, and
    optionally a real-time priority (SCHED_FIFO, needs CAP_SYS_NICE; only on an isolated core: a spinning
    SCHED_FIFO process starves the kernel's per-CPU work) and a nice level."""

    core: int = -1
    wait: WaitName = "spin-sleep"
    rt_priority: int = 0  # 0: normal scheduling; 1-99: SCHED_FIFO at that priority
    nice: int = 0  # -20 (most favoured) .. 19; negative values need CAP_SYS_NICE

    def __post_init__(self) -> None:
        require(0 <= self.rt_priority <= 99, "processes.*.rt_priority must be in [0, 99] (0: off)")
        require(-20 <= self.nice <= 19, "processes.*.nice must be in [-20, 19]")


class ProcessesConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Placement per process. Defaults fit 2 cores: the latency path (strategy, broker) on core 1."""

    feed: ProcessConfig = ProcessConfig(core=0, wait="spin-sleep")
    strategy: ProcessConfig = ProcessConfig(core=1, wait="spin-yield")
    broker: ProcessConfig = ProcessConfig(core=1, wait="spin-yield")
    persistence: ProcessConfig = ProcessConfig(core=0, wait="spin-sleep")


class SupervisorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Restarts: a worker that dies (signal or crash, not a clean fatal exit 2) comes back after a backoff that
    doubles with each restart, while the budget lasts; past it the run stops. Restarted workers re-attach to
    shared memory and resume from their cursors."""

    restart: list[str] = msgspec.field(  # processes brought back when they die
        default_factory=lambda: ["feed", "strategy", "broker", "persistence"])
    restart_backoff_ms: int = 200  # first delay; doubles per restart, up to restart_backoff_max_ms
    restart_backoff_max_ms: int = 5_000
    restart_budget: int = 10  # restarts allowed per process within restart_window_s
    restart_window_s: int = 60
    restart_stable_s: int = 300  # a life shorter than this counts toward restart_budget lives in a row (a crash
    # loop of slow cycles); a longer one clears the count

    def __post_init__(self) -> None:
        for name in self.restart:
            require(name in ("feed", "strategy", "broker", "persistence"),
                    f"supervisor.restart: unknown process {name!r}")
        require(0 < self.restart_backoff_ms <= self.restart_backoff_max_ms,
                "supervisor.restart_backoff_ms must be in (0, restart_backoff_max_ms]")
        require(self.restart_budget >= 0 and self.restart_window_s > 0,
                "supervisor.restart_budget must be >= 0 and restart_window_s > 0")
        require(self.restart_stable_s > 0, "supervisor.restart_stable_s must be > 0")


class MetricsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The Prometheus endpoint: served by the supervisor from the shared-memory counters (never the hot path)."""

    enabled: bool = True
    host: str = "127.0.0.1"  # localhost by default: expose it deliberately
    port: int = 9464  # 0: any free port (printed in the log)

    def __post_init__(self) -> None:
        require(0 <= self.port <= 65535, "metrics.port must be in [0, 65535]")


class RingsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Ring capacities in records (powers of two)."""

    md_events: int = 65536
    orders: int = 4096
    executions: int = 4096

    def __post_init__(self) -> None:
        for name in ("md_events", "orders", "executions"):
            value = getattr(self, name)
            require(value >= 8 and value & (value - 1) == 0, f"rings.{name}: {value} is not a power of two >= 8")


# keys of the old closed strategy config: each now belongs to a strategy module's [strategy.params]
MOVED_TO_PARAMS = (
    "imbalance_threshold", "min_confidence", "momentum_scale", "volatility_scale", "volatility_floor",
    "holding_min_ms", "holding_max_ms", "signal_decay_ms", "min_strength", "max_position", "order_fraction",
    "rules", "rule_holding_ms", "model_path", "model_norm_path", "order_type", "order_ttl_ms",
)


class InstanceConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One strategy instance in the strategy process: a strategy module trading its own symbols.

    Instances split the symbols between them (a symbol belongs to at most one instance, so the broker's
    position per symbol is that instance's); orders carry the instance's number as ``strategy_id``.
    """

    name: str
    module: str = "imbalance"  # a built-in (imbalance, rules, onnx), a dotted module name, or a .py path
    symbols: list[str] = msgspec.field(default_factory=list)  # empty: every symbol (only with one instance)
    params: dict[str, Any] = msgspec.field(default_factory=dict)  # checked against the module's declare_params

    def __post_init__(self) -> None:
        require(self.name.isidentifier(), f"strategy.instances: name {self.name!r} must be a simple name")
        require(bool(self.module.strip()), f"strategy.instances.{self.name}.module must name a strategy")


class StrategyConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which strategy trades, with which parameters, and the feature kernels every strategy reads.

    A strategy is a Python module of numba callbacks (``hft.strategy.api``): a built-in name, a dotted module
    name, or a path to a ``.py`` file. Its parameters go in ``[strategy.params]``, checked against what the module
    declares before anything starts. Several ``[[strategy.instances]]`` run several strategies side by side, each
    on its own symbols; when present they replace ``module`` and ``params``.
    """

    module: str = "imbalance"  # imbalance | rules | onnx (hft.strategy.builtin) | dotted.name | path/to/file.py
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    instances: list[InstanceConfig] = msgspec.field(default_factory=list)
    feature_window_ms: int = 1_000  # the features' window: volatility, momentum half-life, VWAP, flow
    vpin_bucket_volume: str = "1.0"  # toxicity: base units per VPIN volume bucket
    vpin_buckets: int = 50  # toxicity: buckets averaged
    surge_half_life_ms: int = 60_000  # volume surge: half-life of the baseline volume
    snapshot_interval_ms: int = 1_000  # the strategies' state goes to strategy_snapshots this often
    boundscheck: bool = True  # strategy callbacks check array indices: a bad index raises (and halts the
    # instance) instead of writing past an array

    def __post_init__(self) -> None:
        require(self.feature_window_ms > 0, "strategy.feature_window_ms must be positive")
        require(bool(self.module.strip()), "strategy.module must name a strategy")
        require(parse_decimal(self.vpin_bucket_volume, "strategy.vpin_bucket_volume") > 0,
                "strategy.vpin_bucket_volume must be positive")
        require(self.snapshot_interval_ms >= 100, "strategy.snapshot_interval_ms must be >= 100")
        require(self.vpin_buckets > 0 and self.surge_half_life_ms > 0, "strategy.vpin_buckets/surge_half_life_ms > 0")
        names = [instance.name for instance in self.instances]
        require(len(set(names)) == len(names), f"strategy.instances: duplicate names in {names}")
        require(len(self.instances) <= 8, "strategy.instances: at most 8 instances")
        require(not self.instances or not self.params,
                "strategy.params: with [[strategy.instances]], give each instance its own params")

    def effective_instances(self) -> list[InstanceConfig]:
        """The instances to run: the configured list, or one built from ``module`` and ``params``."""
        if self.instances:
            return list(self.instances)
        return [InstanceConfig(name="main", module=self.module, params=dict(self.params))]


FillModelName = Literal["queue", "touch"]


class BrokerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The paper broker's fill simulator (``hft.broker.matching`` explains the model)."""

    taker_fee_bps: float = 1.0  # on fills that take liquidity
    maker_fee_bps: float = 0.0  # on fills of resting orders; negative: a rebate
    entry_latency_us: int = 500  # decision -> the order reaches the venue and meets its book
    fill_model: FillModelName = "queue"  # "queue": queue position; "touch": probability at touch x queue
    queue_cancel_share: float = 0.5  # share of a level's unexplained size decrease assumed ahead of us
    touch_fill_probability: float = 0.5  # "touch": fill probability at a trade at our price, first in queue
    adverse_selection_bps: float = 0.0  # resting fills happen this much worse than the limit price
    random_seed: int = 1  # the touch model's generator: the same seed gives the same fills
    max_open_orders: int = 1024  # orders the broker holds at once (pending arrival or resting)

    def __post_init__(self) -> None:
        require(0 <= self.taker_fee_bps < 100, "broker.taker_fee_bps must be in [0, 100)")
        require(-100 < self.maker_fee_bps < 100, "broker.maker_fee_bps must be in (-100, 100)")
        require(0 <= self.entry_latency_us <= 10_000_000, "broker.entry_latency_us must be in [0, 10 s]")
        require(0 <= self.queue_cancel_share <= 1, "broker.queue_cancel_share must be in [0, 1]")
        require(0 <= self.touch_fill_probability <= 1, "broker.touch_fill_probability must be in [0, 1]")
        require(0 <= self.adverse_selection_bps < 1000, "broker.adverse_selection_bps must be in [0, 1000)")
        require(1 <= self.max_open_orders <= 65536, "broker.max_open_orders must be in [1, 65536]")


class PersistenceConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """SQLite output: one transaction per batch, at most ``flush_ms`` between commits."""

    db_path: str = "runs/hft.db"
    # a PostgreSQL server instead of the SQLite file (pipelines on several hosts into one database):
    # "postgresql://user:password@host:5432/dbname"; rows are keyed by host, instance and run
    url: str = ""
    host: str = ""  # the host name rows carry in PostgreSQL (default: this machine's name)
    # while the server is away, batches go to a local SQLite spool beside db_path (spool-<instance>-<run>.db),
    # replayed in order when it is back; capped at this size (a full spool stops persistence cleanly)
    spool_max_mib: int = 1024
    batch_size: int = 1024
    flush_ms: int = 50
    metrics_interval_ms: int = 1_000  # a performance_metrics row this often (and at the end)
    max_db_mib: int = 0  # cap on the database file (0: none); a full database stops the run cleanly

    def __post_init__(self) -> None:
        require(self.metrics_interval_ms >= 100, "persistence.metrics_interval_ms must be >= 100")
        require(self.max_db_mib >= 0, "persistence.max_db_mib must be >= 0")
        require(not self.url or self.url.startswith(("postgresql://", "postgres://")),
                f"persistence.url {self.url!r}: a PostgreSQL URL (postgresql://user@host:5432/dbname), or empty "
                "for the SQLite file persistence.db_path")
        require(len(self.host) <= 255, "persistence.host: at most 255 characters")
        require(self.spool_max_mib > 0, "persistence.spool_max_mib must be > 0")
        require(not self.url or importlib.util.find_spec("psycopg") is not None,
                "persistence.url needs the PostgreSQL driver: pip install -e '.[postgres]'")
        require(self.batch_size > 0, "persistence.batch_size must be positive")
        require(self.flush_ms > 0, "persistence.flush_ms must be positive")


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole pipeline. ``instance`` names the shared-memory segments: hft.<instance>.<region>."""

    instance: str = "default"
    symbols: list[SymbolConfig] = msgspec.field(default_factory=_default_symbols)
    source: SourceConfig = SourceConfig()
    processes: ProcessesConfig = ProcessesConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    metrics: MetricsConfig = MetricsConfig()
    rings: RingsConfig = RingsConfig()
    strategy: StrategyConfig = StrategyConfig()
    risk: RiskConfig = RiskConfig()
    broker: BrokerConfig = BrokerConfig()
    persistence: PersistenceConfig = PersistenceConfig()

    def __post_init__(self) -> None:
        require(self.instance.isidentifier(), f"instance: {self.instance!r} must be a simple name")
        require(1 <= len(self.symbols) <= 16, "symbols: between 1 and 16 symbols")
        names = [symbol.name for symbol in self.symbols]
        require(len(set(names)) == len(names), f"symbols: duplicate names in {names}")
        instances = self.strategy.effective_instances()
        claimed: dict[str, str] = {}
        for instance in instances:
            require(bool(instance.symbols) or len(instances) == 1,
                    f"strategy.instances.{instance.name}.symbols: list the symbols when there are several instances")
            for symbol in instance.symbols:
                require(symbol in names, f"strategy.instances.{instance.name}: unknown symbol {symbol!r} "
                                         f"(configured: {', '.join(names)})")
                require(symbol not in claimed, f"strategy.instances: {symbol} is traded by both "
                                               f"{claimed.get(symbol)} and {instance.name}")
                claimed[symbol] = instance.name


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read and validate a TOML file (``None``: all defaults). Raise ``ConfigError`` naming the bad key."""
    if path is None:
        return Config()
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        return msgspec.toml.decode(raw, type=Config)
    except msgspec.ValidationError as exc:
        moved = re.search(r"unknown field `(\w+)` - at `\$\.strategy(?:\.instances\[\d+\])?`", str(exc))
        if moved and moved.group(1) in (*MOVED_TO_PARAMS, "generator"):
            key = moved.group(1)
            hint = ('module = "imbalance" | "rules" | "onnx" | <your module>' if key == "generator" else
                    f"[strategy.params] {key} = ... (a parameter of the strategy module)")
            raise ConfigError(f"{path}: strategy.{key} is no longer a strategy key: write {hint}") from None
        raise ConfigError(f"{path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def is_module_path(module: str) -> bool:
    """A strategy module given as a file path (not a built-in or dotted name)."""
    return module.endswith(".py") or "/" in module or os.sep in module


def resolve_module_paths(config: Config, config_path: str | os.PathLike[str] | None) -> Config:
    """Make every strategy module path absolute: relative to the config file's directory when the file is there
    (``hft run --config examples/mm.toml`` with ``module = "mm.py"``), else to the working directory. Workers
    then load exactly the file the supervisor checked, wherever they start."""

    def resolve(module: str) -> str:
        if not is_module_path(module) or os.path.isabs(module):
            return module
        if config_path is not None:
            beside = Path(config_path).resolve().parent / module
            if beside.is_file():
                return str(beside)
        return str(Path(module).expanduser().resolve())

    strategy = config.strategy
    instances = [msgspec.structs.replace(i, module=resolve(i.module)) for i in strategy.instances]
    strategy = msgspec.structs.replace(strategy, module=resolve(strategy.module), instances=instances)
    return msgspec.structs.replace(config, strategy=strategy)


def encode_config(config: Config) -> bytes:
    """Serialize for handing to child processes (they decode exactly what the supervisor validated)."""
    return msgspec.json.encode(config)


def decode_config(raw: bytes) -> Config:
    return msgspec.json.decode(raw, type=Config)
