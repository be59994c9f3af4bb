"""The jitted drain of a socket read (``hft.feed.drain``): it publishes exactly what the per-frame Python path
publishes, takes every complete frame of the read, and stops, untouched, at any frame it leaves to the Python
reader (control frames, fragments, oversized, masked, non-ASCII, frames the fast path declines, incomplete)."""

from __future__ import annotations

import logging
import time

import msgspec
import numpy as np
import pytest
from websocket._abnf import ABNF

from hft.config import Config
from hft.feed.drain import IO_END, IO_READ_NS, IO_START, IO_TRACED, new_cursor
from hft.feed.engine import FeedEngine
from hft.feed.publish import FeedOutlet, publish_to
from hft.feed.specs import symbol_specs
from hft.sim import server
from hft.sim.model import OrderFlowModel
from hft.supervisor import sim_config_for
from shm_layout.atomics import monotonic_ns
from shm_layout.records import MD_EVENT, PROCESS_BLOCK, RING_CONTROL
from shm_layout.ring import POLICY_LOSSY, W_CAPACITY, W_HEAD, W_POLICY
from shm_layout.seqlock import SLOT_WORDS

RING = 1 << 15
CAP = 1 << 20
WALL_OFFSET = time.time_ns() - monotonic_ns()  # the simulator's venue times are near the wall clock


def text(payload: bytes, fin: int = 1, opcode: int = ABNF.OPCODE_TEXT, mask: int = 0) -> bytes:
    return ABNF(fin, 0, 0, 0, opcode, mask, payload).format()


class Side:
    """An engine synced from the simulator's snapshots and a private md.events ring it publishes to."""

    def __init__(self, config: Config, model_snapshots: list[tuple[str, bytes]]) -> None:
        self.engine = FeedEngine(symbol_specs(config, logging.getLogger("test")))
        rows = self.engine.snapshots.view(np.int64).reshape(len(self.engine.snapshots), SLOT_WORDS)
        ctrl = np.zeros(RING_CONTROL.itemsize // 8, np.int64)
        ctrl[W_POLICY], ctrl[W_CAPACITY] = POLICY_LOSSY, RING
        self.outlet = FeedOutlet(self.engine.events, rows, self.engine.dirty, np.zeros(rows.size + SLOT_WORDS,
                                 np.int64), ctrl, np.zeros(RING, MD_EVENT), np.zeros(PROCESS_BLOCK.itemsize // 8,
                                 np.int64))  # fmt: skip
        for name, body in model_snapshots:
            publish_to(self.outlet, self.engine.on_snapshot(name, body, 1), 1, 1)

    def published(self) -> np.ndarray:
        """The events on the ring, without the stamps (they differ by when each side ran)."""
        head = int(self.outlet.md_ctrl[W_HEAD])
        events = self.outlet.md_slots[: min(head, RING)].copy()
        for stamp in ("ts_recv", "ts_init"):
            events[stamp] = 0
        return events


@pytest.fixture(scope="module")
def stream() -> tuple[Config, list[tuple[str, bytes]], list[bytes]]:
    config = msgspec.convert({"source": {"sim_events_per_second": 10000.0}}, Config)
    model = OrderFlowModel(sim_config_for(config))
    model.advance_streams(500_000_000)
    snapshots = [(s.name, model.depth_snapshot(s.name, 1000)) for s in config.symbols]
    frames = [frame for _ in range(200) for _, frame in model.advance_streams(5_000_000)]  # combined-stream frames
    assert sum(b"@depth" in f[:40] for f in frames) >= 10
    return config, snapshots, frames


def drain_all(side: Side, received: bytes, trace: np.ndarray | None = None) -> np.ndarray:
    buf = np.frombuffer(bytearray(received), np.uint8)
    cursor = new_cursor(WALL_OFFSET, CAP)
    cursor[IO_END] = len(buf)
    cursor[IO_READ_NS] = 123
    side.engine.drain(buf, cursor, side.outlet, trace if trace is not None else np.zeros((0, 4), np.int64))
    return cursor


def test_a_read_of_many_frames_when_drained_then_published_as_the_python_path_publishes(stream) -> None:
    config, snapshots, frames = stream
    python_path, drained = Side(config, snapshots), Side(config, snapshots)
    for frame in frames:
        ts = monotonic_ns()
        publish_to(python_path.outlet, python_path.engine.on_frame(frame, ts, ts + WALL_OFFSET), ts, ts)
    cursor = drain_all(drained, b"".join(text(f) for f in frames))
    assert cursor[IO_START] == cursor[IO_END]  # every frame taken
    assert len(drained.published()) > len(frames)  # depth frames carry many levels
    assert np.array_equal(python_path.published(), drained.published())
    assert python_path.engine.stats_dict() == drained.engine.stats_dict()
    tops_a, tops_b = (side.engine.snapshots.copy() for side in (python_path, drained))
    for stamp in ("ts_recv", "ts_init"):
        tops_a[stamp] = tops_b[stamp] = 0
    assert np.array_equal(tops_a, tops_b)


@pytest.mark.parametrize("odd, why", [
    (text(b"hi", opcode=ABNF.OPCODE_PING), "a control frame"),
    (text(b'{"stream":"btcusdt@trade",', fin=0), "a fragment"),
    (text(b"x" * (CAP + 1)), "over the cap"),
    (text(b'{"stream":"x"}', mask=1), "masked"),
    (text('{"stream":"btcusdt@trade","data":{"s":"é"}}'.encode()), "non-ASCII text"),
    (text(b'{"data":{},"stream":"btcusdt@trade"}'), "a shape the fast path declines"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_a_frame_left_to_the_python_path_when_met_then_the_drain_stops_on_it_untouched(stream, odd, why) -> None:
    config, snapshots, frames = stream
    side = Side(config, snapshots)
    before = text(frames[0]) + text(frames[1])
    cursor = drain_all(side, before + odd + text(frames[2]))
    assert cursor[IO_START] == len(before), why
    assert side.engine.stats_dict()["frames"] == 2  # two frames decoded, nothing of the odd one


def test_an_incomplete_frame_when_drained_then_left_for_the_next_read(stream) -> None:
    config, snapshots, frames = stream
    side = Side(config, snapshots)
    whole, cut = text(frames[0]), text(frames[1])
    cursor = drain_all(side, whole + cut[: len(cut) // 2])
    assert cursor[IO_START] == len(whole)


def test_stamped_frames_when_drained_then_traced_with_the_read_and_send_stamps(stream) -> None:
    config, snapshots, frames = stream
    side = Side(config, snapshots)
    received, slots = server.stamp_slots([text(server.stamp_slot(f)) for f in frames[:5]] + [text(frames[5])])
    server.write_stamps(received, slots, 4_000_000_000_000_000_000)
    trace = np.zeros((3, 4), np.int64)  # room for three
    cursor = drain_all(side, bytes(received), trace)
    assert cursor[IO_START] == cursor[IO_END] and cursor[IO_TRACED] == 3
    assert (trace[:, 1] == 4_000_000_000_000_000_000).all() and (trace[:, 2] == 123).all()
    assert (trace[:, 0] > 0).all() and (trace[:, 3] >= trace[:, 0]).all()
