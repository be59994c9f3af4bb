"""deploy/multihost and the dashboard: the files deploy/MULTIHOST.md tells an operator to install are valid and
agree with one another (a host's name in its config, in Prometheus and in Grafana), and the database setup lets
every host write what another created while the reader only reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hft.config import Config, load_config
from hft.strategy.loader import load_strategy
from shm_layout.layout import EXECUTIONS, ORDERS
from shm_layout.records import EXEC_REPORT, ORDER, STATUS_FILLED
from tests.pg import PgServer

REPO = Path(__file__).resolve().parents[3]
MULTIHOST = REPO / "deploy" / "multihost"
CONFIGS = sorted(MULTIHOST.glob("*.toml"))
DASHBOARD = REPO / "deploy" / "grafana-dashboard.json"
SELECTOR = re.compile(r"\bhft_[a-z0-9_]+\{([^}]*)\}")


def _configs() -> dict[str, Config]:
    return {path.name: load_config(path) for path in CONFIGS}


def test_multihost_configs_when_loaded_then_each_host_its_own_name_instance_and_symbols_into_one_database() -> None:
    configs = _configs()
    assert len(configs) >= 2, CONFIGS
    hosts = [config.persistence.host for config in configs.values()]
    instances = [config.instance for config in configs.values()]
    assert all(hosts) and len(set(hosts)) == len(hosts)  # the rows' host: never the machine's name by accident
    assert len(set(instances)) == len(instances)
    servers = {re.sub(r"^postgresql://[^@]*@", "", config.persistence.url).split("?")[0] for config in configs.values()}
    assert len(servers) == 1 and all(config.persistence.url.startswith("postgresql://") for config in configs.values())
    assert not [config.persistence.url for config in configs.values() if re.search(r"://[^@/]*:[^@/]*@",
                                                                                 config.persistence.url)]  # no password
    symbols = [symbol.name for config in configs.values() for symbol in config.symbols]
    assert len(set(symbols)) == len(symbols)  # the desk's symbols are split between hosts
    for name, config in configs.items():
        assert config.metrics.enabled and config.metrics.host not in ("127.0.0.1", "localhost", "0.0.0.0"), name
        for instance in config.strategy.effective_instances():  # the parameters exist and have the right kinds
            load_strategy(instance.module, compile=False).resolve_params(dict(instance.params))


def test_multihost_prometheus_when_parsed_then_scrapes_every_host_with_its_persistence_host_as_label() -> None:
    yaml = pytest.importorskip("yaml")
    scrape = yaml.safe_load((MULTIHOST / "prometheus.yml").read_text())
    labelled: dict[str, str] = {}
    for job in scrape["scrape_configs"]:
        for group in job.get("static_configs", []):
            assert "pipeline" not in group.get("labels", {})  # hft_pipeline_info has a label of that name
            for target in group["targets"]:
                labelled[target] = group["labels"]["host"]
    expected = {f"{config.metrics.host}:{config.metrics.port}": config.persistence.host
                for config in _configs().values()}
    assert labelled == expected  # Grafana's host and the database's host name each machine alike


def test_dashboard_when_loaded_then_a_host_variable_filters_every_query_and_keeps_hosts_apart() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    host = variables["host"]
    assert host["type"] == "query" and host["query"]["query"] == "label_values(hft_pipeline_info, host)"
    assert host["multi"] and host["includeAll"] and host["allValue"] == ".*"  # .* also matches a host-less target
    assert [v["name"] for v in dashboard["templating"]["list"]].index("host") == 0
    assert 'host=~"$host"' in variables["instance"]["query"]["query"]  # endpoints of the chosen hosts
    expressions = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expressions.append(target["expr"])
            assert target["legendFormat"].startswith("{{host}}"), panel["title"]
    assert expressions
    for expr in expressions:
        selectors = SELECTOR.findall(expr)
        assert selectors and all('host=~"$host"' in s and 'instance=~"$instance"' in s for s in selectors), expr
        for grouping in re.findall(r"\bsum\s*(?:by\s*\(([^)]*)\))?\s*\(", expr):  # never add hosts up
            assert {"host", "instance"} <= {label.strip() for label in grouping.split(",")}, expr


def _statements(script: str) -> Iterator[tuple[str, str]]:
    """``("connect", database)`` for psql's ``\\connect``, else ``("sql", statement)``: setup.sql as psql runs it."""
    pending: list[str] = []
    for raw in script.splitlines():
        line = raw.split("--", 1)[0].rstrip()
        if line.startswith("\\connect "):
            assert not pending
            yield "connect", line.split()[1]
        elif line:
            pending.append(line)
            if line.endswith(";"):
                yield "sql", " ".join(pending)
                pending = []
    assert not pending, pending


def _one_batch(n: int) -> tuple[np.ndarray, np.ndarray]:
    orders = np.zeros(n, ORDER)
    orders["order_id"] = np.arange(1, n + 1)
    orders["side"] = 1
    orders["price"] = 6_000_000
    orders["size"] = 1_000
    reports = np.zeros(n, EXEC_REPORT)
    reports["exec_id"] = reports["order_id"] = orders["order_id"]
    reports["side"] = 1
    reports["status"] = STATUS_FILLED
    reports["price"], reports["size"], reports["cum_filled"] = 6_000_000, 1_000, 1_000
    return orders, reports


def test_setup_sql_when_run_then_each_host_writes_the_shared_tables_and_the_reader_only_reads(
    pg_server: PgServer,
) -> None:
    psycopg = pytest.importorskip("psycopg")
    from hft.persistence.pg import PgTradeStore

    configs = list(_configs().values())
    script = (MULTIHOST / "setup.sql").read_text()
    roles = re.findall(r"CREATE ROLE (\w+)", script)
    database = "postgres"
    try:
        for kind, text in _statements(script):
            if kind == "connect":
                database = text
                continue
            with psycopg.connect(pg_server.url_for(database), autocommit=True) as db:
                db.execute(text)

        def url(user: str) -> str:  # the test server trusts loopback: no password
            return f"postgresql://{user}@{pg_server.host}:{pg_server.port}/hft"

        for config in configs:  # the first host creates the schema, the next writes into it
            user = re.match(r"postgresql://(\w+)@", config.persistence.url).group(1)
            assert user in roles
            symbols = [(s.name, s.price_decimals, s.size_decimals) for s in config.symbols]
            store = PgTradeStore(url(user), symbols, config.persistence.host, config.instance, generation=1)
            try:
                store.write_batch(*_one_batch(10), {ORDERS: 10, EXECUTIONS: 10})
            finally:
                store.close()
        with psycopg.connect(pg_server.url_for("hft")) as db:
            owners = db.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
            assert owners == [("hft_writer",)]
        with psycopg.connect(url("hft_reader")) as db:
            rows = db.execute("SELECT r.host, r.instance, COUNT(*) FROM executions e JOIN runs r USING (run_id) "
                              "GROUP BY 1, 2 ORDER BY 1").fetchall()
            assert rows == sorted((c.persistence.host, c.instance, 10) for c in configs)
            assert db.execute("SELECT COUNT(*) FROM trades").fetchone() == (10 * len(configs),)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute("DELETE FROM executions")
    finally:
        with psycopg.connect(pg_server.url, autocommit=True) as db:
            db.execute("DROP DATABASE IF EXISTS hft WITH (FORCE)")
            for role in reversed(roles):
                db.execute(f"DROP ROLE IF EXISTS {role}")
