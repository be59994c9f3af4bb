"""Recorded-data readers (ours, hftbacktest's, cryptofeed's) and the writer behind `hft record`."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from hft.recording.formats import FRAME, SNAPSHOT, RecordingError, RecordingWriter, open_recording

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "binance-spot"
BTC = DATA / "hftbacktest_spot_btcusdt_20240808.gz"
CRYPTOFEED = DATA / "cryptofeed_BINANCE_2021-08-14.ws.1.0"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"recorded data folder {DATA} is absent")

FRAME_A = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.00","q":"1.0"}}'
FRAME_B = b'{"stream":"ethusdt@bookTicker","data":{"u":5,"s":"ETHUSDT","b":"1.00","B":"2","a":"1.01","A":"3"}}'
BODY = b'{"lastUpdateId":42,"bids":[["1.00000000","2.00000000"]],"asks":[["1.01000000","3.00000000"]]}'


@needs_data
def test_read_when_hftbacktest_file_then_every_line_and_the_snapshot_gets_its_symbol() -> None:
    records = list(open_recording(BTC))
    assert len(records) == 41_249  # PROVENANCE.md: 41,249 lines
    snapshots = [r for r in records if r.kind == SNAPSHOT]
    assert len(snapshots) == 1 and snapshots[0].symbol == "BTCUSDT"
    assert snapshots[0].payload.startswith(b'{"lastUpdateId":50093239218')
    assert records.index(snapshots[0]) == 7  # line 8, after the first diffs, as recorded
    assert all(r.payload.startswith(b'{"stream"') for r in records if r.kind == FRAME)


@needs_data
def test_read_when_cryptofeed_files_then_frames_and_http_snapshots_merged_by_time() -> None:
    records = list(open_recording(CRYPTOFEED))
    frames = [r for r in records if r.kind == FRAME]
    snapshots = {r.symbol: r for r in records if r.kind == SNAPSHOT}
    assert len(frames) == 1003
    assert set(snapshots) == {"XMRBTC", "FTMUSDT", "SXPBTC", "BADGERBTC"}
    times = [r.ts_ns for r in records]
    assert times == sorted(times)
    assert snapshots["XMRBTC"].ts_ns == 1628952396_228346000


def test_writer_when_read_back_then_frames_and_snapshots_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "rec.gz"
    with RecordingWriter(path) as writer:
        writer.frame(FRAME_A, ts_ns=1_000)
        writer.snapshot("btcusdt", BODY, ts_ns=2_000)
        writer.frame(FRAME_B, ts_ns=3_000)
    records = list(open_recording(path))
    assert [(r.ts_ns, r.kind, r.symbol) for r in records] == [(1_000, FRAME, None), (2_000, SNAPSHOT, "BTCUSDT"),
                                                             (3_000, FRAME, None)]
    assert records[0].payload == FRAME_A and records[1].payload == BODY and records[2].payload == FRAME_B


def test_read_when_bare_snapshot_precedes_every_frame_then_held_until_its_symbol_is_known(tmp_path: Path) -> None:
    path = tmp_path / "early.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"1 " + BODY + b"\n2 " + FRAME_A + b"\n")
    records = list(open_recording(path))
    assert [(r.kind, r.symbol) for r in records] == [(FRAME, None), (SNAPSHOT, "BTCUSDT")]


def test_read_when_bare_snapshot_and_several_symbols_then_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "two.txt"
    path.write_bytes(b"1 " + FRAME_A + b"\n2 " + FRAME_B + b"\n3 " + BODY + b"\n")
    with pytest.raises(RecordingError, match=r"two.txt:3: a bare depth snapshot"):
        list(open_recording(path))


def test_read_when_line_has_no_timestamp_then_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"1 " + FRAME_A + b"\nnot-a-number " + FRAME_B + b"\n")
    with pytest.raises(RecordingError, match=r"bad.txt:2"):
        list(open_recording(path))


@pytest.mark.parametrize("content", [b"", b"hello world\n", b'{"stream":"x"}\n'])
def test_open_when_not_a_recording_then_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match="not a recording"):
        open_recording(path)


def test_open_when_file_missing_then_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such recording"):
        open_recording(tmp_path / "missing.gz")


def test_read_when_malformed_frame_recorded_then_passed_through_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "m.gz"
    with RecordingWriter(path) as writer:
        writer.frame(b'{"stream":"btcusdt@trade","data":{trunc', ts_ns=5)
    (record,) = open_recording(path)
    assert record.payload == b'{"stream":"btcusdt@trade","data":{trunc'  # the feed counts it, not the reader
