"""The spool while the database server is away, against a real server that is stopped and started: batches go
to the spool in order, are replayed exactly once when the server is back, and a wrong URL at the first start is
one clear error."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest

from hft.persistence.pg import PgTradeStore
from hft.persistence.spool import FailoverStore, Spool, leftover_spools, replay, spool_path
from hft.persistence.store import StoreError
from tests.pg import PgServer, free_port
from tests.unit.persistence.test_store import SYMBOLS, batch

LOG = logging.getLogger("test.spool")


def cursors(n: int) -> dict[str, int]:
    return {"strategy.orders": n, "broker.executions": n}


def count(url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def failover(url: str, tmp_path: Path, generation: int = 1, first_start: bool = True) -> FailoverStore:
    return FailoverStore(lambda: PgTradeStore(url, SYMBOLS, "h", "main", generation, connect_timeout_s=2),
                         Spool(spool_path(tmp_path, "main", generation)), LOG, fail_if_unreachable=first_start)


def test_server_away_when_batches_arrive_then_spooled_and_replayed_in_order_once(
    pg_server: PgServer, pg_database: str, tmp_path: Path
) -> None:
    store = failover(pg_database, tmp_path)
    first_orders, first_reports = batch(6, start=1)
    assert store.write_batch(first_orders, first_reports, cursors(6)) == (6, 4)  # straight to the server
    pg_server.stop()
    try:
        for start in (7, 13, 19):
            orders, reports = batch(6, start=start)
            assert store.write_batch(orders, reports, cursors(start + 5)) == (0, 0)
        assert store.failovers == 1 and store.spool.pending == 3 and store.spool.oldest_ns > 0
        assert store.cursor("broker.executions") == 24  # a restarted process resumes after the spooled batches
        assert store.drain() == (0, 0)  # still away
    finally:
        pg_server.start()
    store.next_retry = 0.0
    assert store.drain(budget_s=10.0) == (18, 12)
    assert store.spool.pending == 0 and store.replayed == 3
    assert count(pg_database, "orders") == 24 and count(pg_database, "executions") == 24
    orders, reports = batch(6, start=25)  # the spool is empty: straight to the server again
    assert store.write_batch(orders, reports, cursors(30)) == (6, 4)
    store.close()
    assert not spool_path(tmp_path, "main", 1).exists()  # an empty spool is removed


def test_server_gone_when_a_periodic_read_runs_first_then_counted_failover_not_a_crash(
    pg_server: PgServer, pg_database: str, tmp_path: Path
) -> None:
    # the metrics sample's reads can be the first statement after the server went away (CI: the persistence
    # process died on psycopg's AdminShutdown there and was restarted)
    store = failover(pg_database, tmp_path)
    orders, reports = batch(6, start=1)
    store.write_batch(orders, reports, cursors(6))
    pg_server.stop()
    try:
        pnls, realized, fees = store.closing_pnls()
        assert len(pnls) == 0 and realized == fees == 0.0  # the default: the sample is skipped
        assert store.failovers == 1 and store.server_away
        assert store.positions() == [] and store.cursor("broker.executions") == 0  # no new failover, no error
        assert store.failovers == 1
        orders, reports = batch(6, start=7)
        assert store.write_batch(orders, reports, cursors(12)) == (0, 0) and store.spool.pending == 1
    finally:
        pg_server.start()
    store.next_retry = 0.0
    assert store.drain(budget_s=10.0) == (6, 4)
    assert not store.server_away and count(pg_database, "orders") == 12
    store.close()


def test_batch_written_before_a_crash_when_replayed_then_skipped_not_twice(
    pg_database: str, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "s.db")
    orders, reports = batch(6)
    spool.append(orders, reports, cursors(6))
    target = PgTradeStore(pg_database, SYMBOLS, "h", "main", 1)
    target.write_batch(orders, reports, cursors(6))  # the replay committed, then the process died
    assert replay(spool, target) == (1, 0, 0) and spool.pending == 0
    assert count(pg_database, "executions") == 6
    target.close()


def test_first_start_when_the_url_is_wrong_then_one_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://hft@127.0.0.1:{free_port()}/hft"
    with pytest.raises(StoreError, match="cannot connect"):
        failover(url, tmp_path)
    assert not spool_path(tmp_path, "main", 1).exists()


def test_restart_when_the_server_is_away_then_spooling_from_the_start(pg_server: PgServer, pg_database: str,
                                                                      tmp_path: Path) -> None:
    pg_server.stop()
    try:
        store = failover(pg_database, tmp_path, first_start=False)
        orders, reports = batch(6)
        store.write_batch(orders, reports, cursors(6))
        assert store.spool.pending == 1 and store.where.startswith("spool ")
        store.close()  # the run ends with the server still away: the spool stays for the next run
    finally:
        pg_server.start()
    assert leftover_spools(tmp_path, "main", 2) == [(1, spool_path(tmp_path, "main", 1))]
    old = Spool(spool_path(tmp_path, "main", 1))
    target = PgTradeStore(pg_database, SYMBOLS, "h", "main", 1)
    assert replay(old, target)[0] == 1 and count(pg_database, "executions") == 6
    target.close()
    old.close()
