"""The Prometheus endpoint (hft/prometheus.py): scraped over HTTP from a real pipeline in shared memory."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hft.prometheus import LE_BOUNDS_NS, MetricsError, MetricsServer, PipelineCollector, effective_le_ns
from shm_layout.counters import (
    C_FRAMES,
    C_MSGS_IN,
    C_MSGS_OUT,
    COUNTER_NAMES,
    GAUGE_COUNTERS,
    PSTATE_RUNNING,
    PSTATE_STARTING,
    W_COUNTERS,
    W_HEARTBEAT,
    W_STATE,
    C,
    bucket_lower_bound,
    counter_add,
    hist_record,
)
from shm_layout.layout import (
    EXECUTIONS,
    HISTOGRAM_NAMES,
    MD_EVENTS,
    ORDERS,
    PROC_BROKER,
    PROC_FEED,
    PROC_PERSISTENCE,
    PROC_STRATEGY,
    PROCESS_NAMES,
    RING_SPECS,
    RUN_RUNNING,
    W_KILL_SWITCH,
    W_RUN_STATE,
    Pipeline,
)
from shm_layout.records import MD_EVENT, ORDER, SYMBOL_INFO

CAPACITIES = {MD_EVENTS: 16, ORDERS: 16, EXECUTIONS: 16}
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Scrape:
    """One scrape, parsed: family names and every sample by (name, labels)."""

    def __init__(self, url: str) -> None:
        with NO_PROXY.open(url, timeout=5) as response:
            self.text = response.read().decode()
        self.families: dict[str, str] = {}
        self.samples: dict[tuple[str, frozenset], float] = {}
        for family in text_string_to_metric_families(self.text):
            self.families[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def names(self) -> set[str]:
        return set(self.families) | {name for name, _ in self.samples}

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for sample, labels in self.samples if sample == name and label in dict(labels)}


def _symbols() -> np.ndarray:
    table = np.zeros(1, SYMBOL_INFO)
    table[0] = (b"BTCUSDT", 0, 2, 8, 1, 1000, 0)
    return table


@pytest.fixture
def pipeline(instance: str):
    created = Pipeline.create(instance, _symbols(), CAPACITIES)
    yield created
    created.unlink()
    created.close()


@pytest.fixture
def server(pipeline: Pipeline):
    metrics = MetricsServer(pipeline, "127.0.0.1", 0)
    metrics.start()
    yield metrics
    metrics.stop()


def _publish(ring, count: int, dtype: np.dtype) -> None:
    records = np.zeros(count, dtype)
    done = 0
    while done < count:  # a lossy ring takes at most its capacity per call
        done += ring.try_publish(records[done : done + ring.capacity])


def test_start_when_port_zero_then_binds_a_free_port_and_serves_metrics(server: MetricsServer) -> None:
    assert 0 < server.port < 65536
    assert server.url == f"http://127.0.0.1:{server.port}/metrics"
    scrape = Scrape(server.url)
    assert scrape.value("hft_pipeline_info", pipeline=server.pipeline.instance) == 1
    assert scrape.families["hft_latency_seconds"] == "histogram"
    assert scrape.families["hft_process_counter"] == "counter"


def test_scrape_when_counters_written_then_every_counter_of_every_process_exact(
    pipeline: Pipeline, server: MetricsServer
) -> None:
    feed = pipeline.control.process_words(PROC_FEED)
    strategy = pipeline.control.process_words(PROC_STRATEGY)
    counter_add(feed, C_MSGS_IN, 7)
    counter_add(feed, C_FRAMES, 5)
    counter_add(feed, C_FRAMES, 1)
    counter_add(strategy, C_MSGS_OUT, 3)
    counter_add(strategy, C["risk_max_position"], 2)
    counter_add(strategy, C["risk_rejects"], 2)

    scrape = Scrape(server.url)

    def counter(process: str, name: str) -> float:
        return scrape.value("hft_process_counter_total", process=process, counter=name)

    assert counter("feed", "msgs_in") == 7
    assert counter("feed", "frames") == 6
    assert counter("strategy", "msgs_out") == 3
    assert counter("strategy", "risk_max_position") == 2
    assert counter("strategy", "risk_rejects") == 2
    assert counter("broker", "fills") == 0
    series = [key for key in scrape.samples if key[0] == "hft_process_counter_total"]
    totals = set(COUNTER_NAMES) - GAUGE_COUNTERS  # the levels (spool batches and age) are gauges
    assert len(series) == len(PROCESS_NAMES) * len(totals)
    assert scrape.label_values("hft_process_counter_total", "counter") == totals
    assert scrape.label_values("hft_process_gauge", "gauge") == set(GAUGE_COUNTERS)
    persistence = pipeline.control.process_words(PROCESS_NAMES.index("persistence"))
    persistence[W_COUNTERS + C["spool_pending"]] = 4  # a level: set, not added
    assert Scrape(server.url).value("hft_process_gauge", process="persistence", gauge="spool_pending") == 4


def test_scrape_when_processes_run_then_up_state_heartbeat_restarts_kill_switch_and_run_state(
    pipeline: Pipeline, server: MetricsServer
) -> None:
    control = pipeline.control
    control.words[W_KILL_SWITCH] = 1
    control.words[W_RUN_STATE] = RUN_RUNNING
    feed = control.process_words(PROC_FEED)
    feed[W_STATE] = PSTATE_RUNNING
    feed[W_HEARTBEAT] = time.monotonic_ns() - 2_000_000_000
    control.process_words(PROC_BROKER)[W_STATE] = PSTATE_STARTING
    control.process_words(PROC_BROKER)[W_HEARTBEAT] = time.monotonic_ns()
    control.process_record(PROC_PERSISTENCE)["restarts"] = 3

    scrape = Scrape(server.url)

    assert scrape.value("hft_kill_switch") == 1
    assert scrape.value("hft_run_state") == RUN_RUNNING
    assert scrape.value("hft_process_up", process="feed") == 1
    assert scrape.value("hft_process_up", process="broker") == 0
    assert scrape.value("hft_process_state", process="broker") == PSTATE_STARTING
    assert 2.0 <= scrape.value("hft_process_heartbeat_age_seconds", process="feed") < 10.0
    assert 0.0 <= scrape.value("hft_process_heartbeat_age_seconds", process="broker") < 5.0
    # no heartbeat yet: no age (hft_process_up says it is not running)
    assert scrape.label_values("hft_process_heartbeat_age_seconds", "process") == {"feed", "broker"}
    assert scrape.value("hft_process_restarts_total", process="persistence") == 3
    assert scrape.value("hft_process_restarts_total", process="feed") == 0


def test_scrape_when_records_published_and_consumed_then_ring_head_lag_fill_overruns_and_waits_exact(
    pipeline: Pipeline, server: MetricsServer
) -> None:
    events = pipeline.rings[MD_EVENTS]  # lossy, 16 slots, consumers strategy and broker
    _publish(events, 40, MD_EVENT)
    events.read(RING_SPECS[MD_EVENTS].consumers.index("strategy"), 4)  # lapped: skips to 28, reads 4
    orders = pipeline.rings[ORDERS]  # block, 16 slots, consumers broker and persistence
    _publish(orders, 10, ORDER)
    orders.read(RING_SPECS[ORDERS].consumers.index("broker"), 3)
    stop = np.ones(1, np.int64)  # give up at the first wait, counting it
    assert orders.publish(np.zeros(10, ORDER), stop_words=stop) == 6

    scrape = Scrape(server.url)

    assert scrape.value("hft_ring_head_total", ring=MD_EVENTS) == 40
    assert scrape.value("hft_ring_capacity", ring=MD_EVENTS) == 16
    assert scrape.value("hft_ring_consumer_lag", ring=MD_EVENTS, consumer="strategy") == 8
    assert scrape.value("hft_ring_consumer_overruns_total", ring=MD_EVENTS, consumer="strategy") == 1
    assert scrape.value("hft_ring_consumer_lost_total", ring=MD_EVENTS, consumer="strategy") == 28
    assert scrape.value("hft_ring_consumer_lag", ring=MD_EVENTS, consumer="broker") == 40
    assert scrape.value("hft_ring_consumer_overruns_total", ring=MD_EVENTS, consumer="broker") == 0
    assert scrape.value("hft_ring_fill_ratio", ring=MD_EVENTS) == 1.0  # clipped: broker was lapped
    assert scrape.value("hft_ring_backpressure_waits_total", ring=MD_EVENTS) == 0

    assert scrape.value("hft_ring_head_total", ring=ORDERS) == 16
    assert scrape.value("hft_ring_publishes_total", ring=ORDERS) == 2
    assert scrape.value("hft_ring_consumer_lag", ring=ORDERS, consumer="broker") == 13
    assert scrape.value("hft_ring_consumer_lag", ring=ORDERS, consumer="persistence") == 16
    assert scrape.value("hft_ring_fill_ratio", ring=ORDERS) == 1.0
    assert scrape.value("hft_ring_backpressure_waits_total", ring=ORDERS) == 1

    assert scrape.value("hft_ring_head_total", ring=EXECUTIONS) == 0
    assert scrape.value("hft_ring_fill_ratio", ring=EXECUTIONS) == 0.0
    assert scrape.label_values("hft_ring_consumer_lag", "consumer") == {"strategy", "broker", "persistence"}


def _bucket(name: str, process: str, histogram: str, le: str) -> tuple[str, frozenset]:
    return name, frozenset({"process": process, "histogram": histogram, "le": le}.items())


def test_scrape_when_latency_samples_recorded_then_buckets_cumulative_count_and_sum_exact(
    pipeline: Pipeline, server: MetricsServer
) -> None:
    # none of these lies within 11 % below a bound, where the rule leaves a sample to the next bound
    samples = [3, 300, 700, 1_500, 3_000, 3_000, 40_000, 2_000_000, 2_000_000_000]
    strategy = pipeline.control.process_words(PROC_STRATEGY)
    for value in samples:
        hist_record(strategy, 0, value)

    scrape = Scrape(server.url)

    process, histogram = "strategy", HISTOGRAM_NAMES[PROC_STRATEGY][0]
    counts = [scrape.samples[_bucket("hft_latency_seconds_bucket", process, histogram, le)]
              for le in [*(_le(b) for b in LE_BOUNDS_NS), "+Inf"]]
    assert counts == [sum(v <= le for v in samples) for le in LE_BOUNDS_NS] + [len(samples)]
    assert counts[LE_BOUNDS_NS.index(1_000)] == 3  # 3, 300, 700
    assert counts[LE_BOUNDS_NS.index(5_000)] == 6
    assert counts[LE_BOUNDS_NS.index(1_000_000_000)] == 8  # the 2 s sample only under +Inf
    assert counts == sorted(counts)
    labels = {"process": process, "histogram": histogram}
    assert scrape.value("hft_latency_seconds_count", **labels) == len(samples)
    assert scrape.value("hft_latency_seconds_sum", **labels) == pytest.approx(sum(samples) / 1e9, rel=1e-12)
    other = {"process": "broker", "histogram": HISTOGRAM_NAMES[PROC_BROKER][1]}
    assert scrape.value("hft_latency_seconds_count", **other) == 0
    assert scrape.value("hft_latency_seconds_sum", **other) == 0


def test_scrape_when_sample_on_either_side_of_each_effective_edge_then_le_counts_whole_buckets_only(
    pipeline: Pipeline, server: MetricsServer
) -> None:
    edges = [effective_le_ns(le) for le in LE_BOUNDS_NS]
    lower_bounds = {bucket_lower_bound.py_func(b) for b in range(16, 16 + 8 * 30)}  # up to 2**34 ns
    for le, edge in zip(LE_BOUNDS_NS, edges, strict=True):
        assert le * 8 / 9 < edge <= le  # never above the bound, at most 1/9 below it
        assert edge + 1 in lower_bounds  # the edge is the last value of a shared-memory bucket
    samples = [value for edge in edges for value in (edge, edge + 1)] + [980]
    broker = pipeline.control.process_words(PROC_BROKER)
    for value in samples:
        hist_record(broker, 1, value)

    scrape = Scrape(server.url)

    histogram = HISTOGRAM_NAMES[PROC_BROKER][1]
    for le, edge in zip(LE_BOUNDS_NS, edges, strict=True):
        got = scrape.samples[_bucket("hft_latency_seconds_bucket", "broker", histogram, _le(le))]
        assert got == sum(v <= edge for v in samples), le
    # 980 ns is below 1 us but in the shared-memory bucket [960, 1023] that straddles it: counted at 2.5 us
    assert effective_le_ns(1_000) == 959
    bucket = "hft_latency_seconds_bucket"
    assert scrape.samples[_bucket(bucket, "broker", histogram, "1e-06")] == 5  # 239 240 479 480 959
    assert scrape.samples[_bucket(bucket, "broker", histogram, "2.5e-06")] == 8  # and 960 980 2303
    assert scrape.samples[_bucket("hft_latency_seconds_bucket", "broker", histogram, "+Inf")] == len(samples)


def _le(bound_ns: int) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound_ns / 1e9)


def test_start_when_port_in_use_then_metrics_error(pipeline: Pipeline) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        metrics = MetricsServer(pipeline, "127.0.0.1", port)
        with pytest.raises(MetricsError, match=f"127.0.0.1:{port}"):
            metrics.start()
        metrics.stop()  # nothing started: a no-op


def test_stop_when_serving_then_port_released_and_shared_memory_no_longer_read(pipeline: Pipeline) -> None:
    metrics = MetricsServer(pipeline, "127.0.0.1", 0)
    port = metrics.start()
    url = metrics.url
    Scrape(url)
    metrics.stop()
    metrics.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        NO_PROXY.open(url, timeout=2)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))  # the port is free again
    collector = PipelineCollector(pipeline)
    assert list(collector.collect())
    collector.close()
    assert list(collector.collect()) == []


# ------------------------------------------------------------------------------------------ the dashboard

METRIC_NAME = re.compile(r"\bhft_[a-z0-9_]+")
LABEL_MATCHER = re.compile(r'\b(process|counter|ring|consumer|histogram)\s*(=~|!=|=)\s*"([^"]*)"')


def _dashboard_queries(node: object) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variable queries."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query") and isinstance(value, str):
                found.append(value)
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                found.append(value["query"])
            else:
                found.extend(_dashboard_queries(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_dashboard_queries(item))
    return found


def _panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def test_dashboard_when_loaded_then_importable_shape_with_prometheus_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["name"] == "DS_PROMETHEUS"
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    assert 36 <= dashboard["schemaVersion"] <= 41
    panels = _panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and all(target["expr"] for target in panel["targets"]), panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_when_scraped_then_every_metric_and_label_value_it_queries_is_exported(
    server: MetricsServer,
) -> None:
    queries = _dashboard_queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) >= 15
    for index in range(len(PROCESS_NAMES)):  # heartbeat ages exist once processes beat
        server.pipeline.control.process_words(index)[W_HEARTBEAT] = time.monotonic_ns()
    scrape = Scrape(server.url)
    exported = scrape.names()
    label_values = {
        "process": set(PROCESS_NAMES),
        "counter": set(COUNTER_NAMES),
        "ring": set(RING_SPECS),
        "consumer": {consumer for spec in RING_SPECS.values() for consumer in spec.consumers},
        "histogram": {name for names in HISTOGRAM_NAMES for name in names},
    }
    used = set()
    for query in queries:
        for name in METRIC_NAME.findall(query):
            assert name in exported, f"{name} (in {query!r}) is not exported"
            used.add(name)
        for label, op, value in LABEL_MATCHER.findall(query):
            alternatives = [value] if op != "=~" else value.split("|")
            for alternative in alternatives:
                if alternative.endswith(".+") or alternative.endswith(".*"):
                    prefix = alternative[:-2]
                    assert any(v.startswith(prefix) for v in label_values[label]), (label, alternative, query)
                else:
                    assert alternative in label_values[label], f'{label}="{alternative}" matches nothing: {query!r}'
    for family in ("hft_process_up", "hft_process_heartbeat_age_seconds", "hft_process_restarts_total",
                   "hft_ring_fill_ratio", "hft_ring_consumer_lag", "hft_ring_backpressure_waits_total",
                   "hft_latency_seconds_bucket", "hft_kill_switch", "hft_process_counter_total"):
        assert family in used, f"the dashboard shows no {family}"
