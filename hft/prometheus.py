"""The Prometheus endpoint: the supervisor serves the shared-memory counters over HTTP, read at each scrape.

Who runs it: the supervisor only (``MetricsServer(pipeline, host, port).start()`` after ``Pipeline.create``,
``stop()`` before the pipeline is unmapped). Workers never import this module and the hot path never knows it
exists: every number below already lies in shared memory (process blocks and ring control lines), and a scrape
is a handful of plain int64 loads in one of the supervisor's threads. Nothing is written, no ring consumer is
registered, so a read-only mapping (``Pipeline.attach(instance, readonly=True)``) serves as well.

Exported at every scrape (one dedicated ``CollectorRegistry``, never the global one, so nothing else leaks in):

=========================================================  =========  ============================================
metric                                                     type       source
=========================================================  =========  ============================================
``hft_pipeline_info{pipeline}``                            gauge      1; ``pipeline`` is the instance name
``hft_run_state``                                          gauge      CONTROL.run_state: 0 not yet, 1 starting,
                                                                      2 running, 3 stopping
``hft_kill_switch``                                        gauge      CONTROL.kill_switch (1: no new exposure)
``hft_process_up{process}``                                gauge      1 while PROCESS_BLOCK.state is running
``hft_process_state{process}``                             gauge      0 stopped, 1 starting, 2 running, 3 stopping
``hft_process_heartbeat_age_seconds{process}``             gauge      now - heartbeat_ns (absent before the first)
``hft_process_restarts_total{process}``                    counter    PROCESS_BLOCK.restarts (the supervisor's)
``hft_process_counter_total{process,counter}``             counter    every name of ``COUNTER_NAMES`` but the gauges
``hft_process_gauge{process,gauge}``                       gauge      ``GAUGE_COUNTERS``: spool batches and age (ms)
``hft_ring_capacity{ring}``                                gauge      records
``hft_ring_head_total{ring}``                              counter    records published
``hft_ring_publishes_total{ring}``                         counter    batches published
``hft_ring_fill_ratio{ring}``                              gauge      the fullest consumer's lag / capacity, 0..1
``hft_ring_backpressure_waits_total{ring}``                counter    times the producer found a block ring full
``hft_ring_consumer_lag{ring,consumer}``                   gauge      head - tail, records
``hft_ring_consumer_overruns_total{ring,consumer}``        counter    times the consumer was lapped (lossy ring)
``hft_ring_consumer_lost_total{ring,consumer}``            counter    records it skipped because of overruns
``hft_latency_seconds{process,histogram}``                 histogram  the process's two latency histograms
=========================================================  =========  ============================================

Process counters are one family with a ``counter`` label rather than one family per name: the counter list is
data (``shm_layout.counters.COUNTER_NAMES`` grows without touching this module, exactly like ``hft stats``),
and dashboards select with one matcher (``counter=~"risk_.+"`` gives the risk denials by reason). The price of
that choice: the counters mean different things, so never ``sum`` across ``counter`` (``risk_rejects`` is
already the total of the ``risk_<reason>`` counters; ``msgs_in`` of different processes are different
messages). Each process owns one block of them and most names concern one process only (``frames``: feed,
``fills``: broker); the others are exported at 0 so every series exists from the first scrape.

Latency histograms: the shared-memory histogram has about 490 log-linear buckets (``shm_layout.counters``);
Prometheus gets them re-bucketed at the fixed bounds ``LE_BOUNDS_NS`` (250 ns to 1 s, then ``+Inf``). The rule
is: **``le = L`` counts the samples of every whole shared-memory bucket whose largest value is <= L**. A sum of
whole buckets is exact (no interpolation, no sample counted twice, counts cumulative by construction), but L is
a round decimal and bucket edges are ``k * 2**n`` ns (8 <= k <= 15), so the one shared-memory bucket that
straddles L is left to the next bound: ``le=1e-06`` counts the samples <= 959 ns, a sample of 980 ns first
appears under ``le=2.5e-06``. The effective edge (``effective_le_ns``) is always within 1/9 (11 %) below L and
never above it, so a quantile computed from these buckets errs towards slower, never faster. ``+Inf`` and
``_count`` are the sum of all buckets (Prometheus requires them equal); ``_sum`` is the row's sum of samples in
seconds. A writer may add a sample between the loads of one row: count and sum can then disagree by the samples
in flight, which is fine for monitoring (``shm_layout.counters`` says the same).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from shm_layout.counters import (
    COUNTER_NAMES,
    GAUGE_COUNTERS,
    H_SUM,
    PSTATE_RUNNING,
    W_COUNTERS,
    W_HEARTBEAT,
    W_STATE,
    bucket_lower_bound,
    hist_row,
)
from shm_layout.layout import HISTOGRAM_NAMES, PROCESS_NAMES, W_KILL_SWITCH, W_RUN_STATE, Pipeline
from shm_layout.records import HIST_BUCKETS, HIST_HEADER_WORDS, N_HISTOGRAMS, PROCESS_BLOCK, word_index

# upper bounds (ns) of the exported histogram buckets, +Inf implied; keep them few: each is a series per histogram
LE_BOUNDS_NS = (
    250, 500,
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000, 500_000_000,
    1_000_000_000,
)
W_RESTARTS = word_index(PROCESS_BLOCK, "restarts")
SCRAPE_LOCK_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.05  # how often the serving thread checks for stop(): bounds stop()'s latency


# the one definition of the bucket edges, as plain Python: no numba compilation in the supervisor
_LOWER_BOUND = getattr(bucket_lower_bound, "py_func", bucket_lower_bound)


class MetricsError(RuntimeError):
    """The endpoint cannot be served (address in use, unknown host): the supervisor logs it and runs on."""


def _bucket_max_ns(bucket: int) -> int:
    """Return the largest value (ns) a shared-memory histogram bucket holds."""
    return _LOWER_BOUND(bucket + 1) - 1


def _whole_buckets(le_ns: int) -> int:
    """Return how many leading shared-memory buckets lie entirely at or below ``le_ns``."""
    count = 0
    while count < HIST_BUCKETS and _bucket_max_ns(count) <= le_ns:
        count += 1
    return count


_CUTS = np.array([_whole_buckets(le) for le in LE_BOUNDS_NS], dtype=np.int64)
assert np.all(_CUTS >= 1) and np.all(np.diff(_CUTS) >= 0)
_LE_LABELS = tuple(floatToGoString(le / 1e9) for le in LE_BOUNDS_NS)


def effective_le_ns(le_ns: int) -> int:
    """Return the largest sample (ns) the bucket ``le = le_ns`` counts: the edge the rule above really uses."""
    return _bucket_max_ns(_whole_buckets(le_ns) - 1)


def cumulative_buckets(row: np.ndarray) -> list[tuple[str, float]]:
    """Turn one shared-memory histogram row into Prometheus's cumulative ``(le, count)`` pairs, ``+Inf`` last."""
    cumulative = np.cumsum(row[HIST_HEADER_WORDS:])
    counts = cumulative[_CUTS - 1]
    pairs = [(label, float(value)) for label, value in zip(_LE_LABELS, counts, strict=True)]
    pairs.append(("+Inf", float(cumulative[-1])))
    return pairs


class PipelineCollector(Collector):
    """Read one pipeline's shared memory into metric families at every scrape.

    ``collect`` runs in the HTTP server's threads (one scrape at a time, under a lock); ``close`` waits for a
    scrape in progress and makes later ones empty, so the caller may then unmap the pipeline safely.
    """

    def __init__(self, pipeline: Pipeline, clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self._pipeline: Pipeline | None = pipeline
        self._clock_ns = clock_ns  # CLOCK_MONOTONIC, the clock the workers' heartbeats use
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop reading the pipeline (after a scrape in progress finishes)."""
        with self._lock:
            self._pipeline = None

    def describe(self) -> Iterable[Metric]:
        """Describe nothing: registering must not read shared memory (names are checked at scrape time)."""
        return []

    def collect(self) -> Iterable[Metric]:
        """Take one reading of every process block and ring."""
        if not self._lock.acquire(timeout=SCRAPE_LOCK_TIMEOUT_S):
            return []
        try:
            if self._pipeline is None:
                return []
            return self._read(self._pipeline)
        finally:
            self._lock.release()

    def _read(self, pipeline: Pipeline) -> list[Metric]:
        control = pipeline.control
        now = self._clock_ns()
        info = GaugeMetricFamily("hft_pipeline_info", "The pipeline instance this endpoint serves.",
                                 labels=["pipeline"])
        info.add_metric([pipeline.instance], 1)
        run_state = GaugeMetricFamily("hft_run_state",
                                      "Pipeline run state: 0 not yet, 1 starting, 2 running, 3 stopping.",
                                      value=int(control.words[W_RUN_STATE]))
        kill = GaugeMetricFamily("hft_kill_switch", "1 while the kill switch is on (no new exposure).",
                                 value=int(control.words[W_KILL_SWITCH]))
        up = GaugeMetricFamily("hft_process_up", "1 while the process reports the running state.",
                               labels=["process"])
        state = GaugeMetricFamily("hft_process_state", "Process state: 0 stopped, 1 starting, 2 running, "
                                  "3 stopping.", labels=["process"])
        age = GaugeMetricFamily("hft_process_heartbeat_age_seconds",
                                "Seconds since the process's last heartbeat (absent before its first).",
                                labels=["process"])
        restarts = CounterMetricFamily("hft_process_restarts", "Times the supervisor restarted the process.",
                                       labels=["process"])
        counters = CounterMetricFamily(
            "hft_process_counter",
            "Per-process shared-memory counters (shm_layout.counters.COUNTER_NAMES); never sum across counter.",
            labels=["process", "counter"],
        )
        gauges = GaugeMetricFamily(
            "hft_process_gauge",
            "Per-process shared-memory levels (shm_layout.counters.GAUGE_COUNTERS: the spool's batches and age).",
            labels=["process", "gauge"],
        )
        latency = HistogramMetricFamily(
            "hft_latency_seconds",
            "Per-process latency histograms; le counts whole shared-memory buckets at or below it (hft.prometheus).",
            labels=["process", "histogram"],
        )
        for index, name in enumerate(PROCESS_NAMES):
            block = control.process_words(index)
            process_state = int(block[W_STATE])
            up.add_metric([name], 1 if process_state == PSTATE_RUNNING else 0)
            state.add_metric([name], process_state)
            heartbeat = int(block[W_HEARTBEAT])
            if heartbeat:
                age.add_metric([name], max(0.0, (now - heartbeat) / 1e9))
            restarts.add_metric([name], int(block[W_RESTARTS]))
            values = block[W_COUNTERS : W_COUNTERS + len(COUNTER_NAMES)].tolist()
            for counter, value in zip(COUNTER_NAMES, values, strict=True):
                (gauges if counter in GAUGE_COUNTERS else counters).add_metric([name, counter], value)
            for histogram in range(N_HISTOGRAMS):
                row = hist_row(block, histogram)
                latency.add_metric([name, HISTOGRAM_NAMES[index][histogram]], cumulative_buckets(row),
                                   int(row[H_SUM]) / 1e9)
        return [info, run_state, kill, up, state, age, restarts, counters, gauges, latency,
                *self._read_rings(pipeline)]

    @staticmethod
    def _read_rings(pipeline: Pipeline) -> list[Metric]:
        capacity = GaugeMetricFamily("hft_ring_capacity", "Ring capacity in records.", labels=["ring"])
        head = CounterMetricFamily("hft_ring_head", "Records published on the ring.", labels=["ring"])
        publishes = CounterMetricFamily("hft_ring_publishes", "Batches published on the ring.", labels=["ring"])
        fill = GaugeMetricFamily("hft_ring_fill_ratio", "The fullest consumer's unread records / capacity (0..1).",
                                 labels=["ring"])
        waits = CounterMetricFamily("hft_ring_backpressure_waits",
                                    "Times the producer found the (block) ring full and waited.", labels=["ring"])
        lag = GaugeMetricFamily("hft_ring_consumer_lag", "Records published and not yet consumed (head - tail).",
                                labels=["ring", "consumer"])
        overruns = CounterMetricFamily("hft_ring_consumer_overruns",
                                       "Times the consumer was lapped on a lossy ring.", labels=["ring", "consumer"])
        lost = CounterMetricFamily("hft_ring_consumer_lost", "Records the consumer skipped because of overruns.",
                                   labels=["ring", "consumer"])
        for ring_name, ring in pipeline.rings.items():
            stats = ring.stats()
            capacity.add_metric([ring_name], stats["capacity"])
            head.add_metric([ring_name], stats["head"])
            publishes.add_metric([ring_name], stats["publishes"])
            waits.add_metric([ring_name], stats["backpressure_waits"])
            fill.add_metric([ring_name], max((c["fill"] for c in stats["consumers"]), default=0.0))
            for consumer in stats["consumers"]:
                labels = [ring_name, consumer["name"]]
                lag.add_metric(labels, consumer["lag"])
                overruns.add_metric(labels, consumer["overruns"])
                lost.add_metric(labels, consumer["lost"])
        return [capacity, head, publishes, fill, waits, lag, overruns, lost]


class _QuietHandler(WSGIRequestHandler):
    """Log no request lines (a scrape every few seconds would flood the supervisor's log)."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class MetricsServer:
    """The HTTP endpoint of one pipeline, served from daemon threads of the calling process.

    Any path answers with the metrics (``/metrics`` by convention); ``?name[]=hft_kill_switch`` filters, and an
    ``Accept: application/openmetrics-text`` scrape gets OpenMetrics (prometheus-client's WSGI app). Call
    ``start`` and ``stop`` from one thread (the supervisor's main thread), ``stop`` before the pipeline is
    unmapped. Scrapes are served concurrently with the caller and never block it.

    This is ``prometheus_client.start_http_server`` with a shorter poll interval, so that ``stop`` returns
    within ``POLL_INTERVAL_S`` instead of half a second. The supervisor's use::

        metrics = MetricsServer(pipeline, config.metrics.host, config.metrics.port)   # after Pipeline.create
        try:
            log.info("metrics on http://%s:%d/metrics", config.metrics.host, metrics.start())
        except MetricsError as exc:
            log.warning("%s", exc)          # the run goes on without the endpoint
        ...
        metrics.stop()                      # in close(), before pipeline.unlink() and pipeline.close()
    """

    def __init__(self, pipeline: Pipeline, host: str = "127.0.0.1", port: int = 9464) -> None:
        self.pipeline = pipeline
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector: PipelineCollector | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the scrape URL (valid after ``start``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> int:
        """Bind and serve; return the bound port (``port=0`` binds any free port).

        Raise ``MetricsError`` when the address cannot be bound (port in use, no such host, no permission).
        """
        if self._server is not None:
            raise MetricsError(f"the metrics endpoint already serves {self.url}")
        collector = PipelineCollector(self.pipeline)
        self.registry.register(collector)
        try:
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]

            class Server(ThreadingWSGIServer):
                address_family = family  # IPv6 hosts too

            server = make_server(address[0], self.port, make_wsgi_app(self.registry), Server,
                                 handler_class=_QuietHandler)
        except OSError as exc:  # socket.gaierror included
            self.registry.unregister(collector)
            collector.close()
            reason = exc.strerror or str(exc)
            raise MetricsError(f"cannot serve Prometheus metrics on {self.host}:{self.port}: {reason}") from exc
        thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL_S,), name="hft-metrics",
                                  daemon=True)
        thread.start()
        self._collector, self._server, self._thread = collector, server, thread
        self.port = int(server.server_address[1])
        return self.port

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and release the port; after it returns, shared memory is never read again (idempotent)."""
        server, thread, collector = self._server, self._thread, self._collector
        self._server = self._thread = self._collector = None
        if server is None:
            return
        server.shutdown()  # ends serve_forever within POLL_INTERVAL_S; a scrape in flight may still finish ...
        collector.close()  # ... but after this no scrape touches the pipeline
        self.registry.unregister(collector)
        server.server_close()
        thread.join(timeout_s)

    def __enter__(self) -> MetricsServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
