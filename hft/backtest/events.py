"""Market data for the backtest: recordings decoded by the feed engine into chunks, and the converted event file.

``FrameSource`` reads one or more recordings in order through one ``FeedEngine`` (the feed process's decoder and
book sync, unchanged), so consecutive files continue one book when their update ids chain; a break resyncs from
the next recorded snapshot, counted by the engine (``resyncs``). Each frame the engine turns into events, or
into changed book snapshots, is appended to a ``ChunkBuffer``: the events, where the frame ends, and the
snapshot rows the feed would have published before them (``hft.backtest.core`` reads exactly that).

``hft convert`` runs the same decoding once and writes the chunk arrays to an ``.npz`` file (``write_events``):
the project's own records with the book sync resolved, which ``hft backtest`` then reads without JSON
(``read_events``). The file carries its format version, the symbols it was decoded with and the feed's counts.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
from numba import njit, types

from hft.backtest.core import CW_N_EVENTS, CW_N_FRAMES, CW_N_SNAPS, N_CW, chunk_t, new_chunk
from hft.config import Config
from hft.feed.engine import FeedEngine
from hft.feed.specs import symbol_specs
from hft.recording.formats import FRAME, RecordingError, open_recordings
from hft.strategy.runtime import _entry
from shm_layout.records import MD_EVENT, md_event_t
from shm_layout.seqlock import SLOT_WORDS

EVENTS_FORMAT = "hft-events"
EVENTS_VERSION = 1
EVENTS_SUFFIX = ".npz"


class EventsError(ValueError):
    """An input the backtest cannot read; the message names the file and the reason."""


@njit(cache=True)
def append_frame(chunk, events, n: int, snapshot_rows, dirty) -> bool:
    """Append one decoded frame: the snapshots it changed (then cleared in ``dirty``) and its ``n`` events.
    False, and nothing appended, if the chunk lacks room (run it, reset it, append again)."""
    w = chunk.words
    n_frames = w[CW_N_FRAMES]
    n_events = w[CW_N_EVENTS]
    n_snaps = w[CW_N_SNAPS]
    n_dirty = 0
    for symbol in range(dirty.shape[0]):
        if dirty[symbol] != 0:
            n_dirty += 1
    if n == 0 and n_dirty == 0:
        return True
    if (n_frames >= chunk.frame_end.shape[0] or n_events + n > chunk.events.shape[0]
            or n_snaps + n_dirty > chunk.snap_rows.shape[0]):
        return False
    for symbol in range(dirty.shape[0]):
        if dirty[symbol] != 0:
            chunk.snap_rows[n_snaps, :] = snapshot_rows[symbol, :]
            chunk.snap_frame[n_snaps] = n_frames
            chunk.snap_symbol[n_snaps] = symbol
            n_snaps += 1
            dirty[symbol] = 0
    for k in range(n):
        chunk.events[n_events + k] = events[k]
    chunk.frame_end[n_frames] = n_events + n
    w[CW_N_FRAMES] = n_frames + 1
    w[CW_N_EVENTS] = n_events + n
    w[CW_N_SNAPS] = n_snaps
    return True


APPEND_SIGNATURE = (chunk_t, types.Array(md_event_t, 1, "C"), types.int64, types.int64[:, ::1], types.int64[::1])


def append_entry():
    """``append_frame`` compiled for exactly the feed engine's arrays, called without the dispatcher's typing
    (a microsecond a frame, as much as the rest of the loop spends on a bookTicker)."""
    return _entry(append_frame, APPEND_SIGNATURE)


def compile_backtest() -> None:
    """Compile (or load) the backtest's jitted entry points: what ``hft warm`` does for backtests."""
    from hft.backtest.core import CHUNK_SIGNATURE, FINISH_SIGNATURE, backtest_chunk, backtest_finish

    append_entry()
    _entry(backtest_chunk, CHUNK_SIGNATURE)
    _entry(backtest_finish, FINISH_SIGNATURE)


@dataclass
class ChunkBuffer:
    """Arrays of one chunk and the structref over them (``ref``); ``reset`` empties it for the next frames."""

    words: np.ndarray
    events: np.ndarray
    frame_end: np.ndarray
    snap_rows: np.ndarray
    snap_frame: np.ndarray
    snap_symbol: np.ndarray
    ref: object = field(init=False)

    def __post_init__(self) -> None:
        self.ref = new_chunk((self.words, self.events, self.frame_end, self.snap_rows, self.snap_frame,
                              self.snap_symbol))

    @classmethod
    def allocate(cls, frames: int, events: int, snaps: int) -> ChunkBuffer:
        return cls(np.zeros(N_CW, np.int64), np.zeros(events, MD_EVENT), np.zeros(frames, np.int64),
                   np.zeros((snaps, SLOT_WORDS), np.int64), np.zeros(snaps, np.int64), np.zeros(snaps, np.int64))

    @property
    def n_frames(self) -> int:
        return int(self.words[CW_N_FRAMES])

    @property
    def n_events(self) -> int:
        return int(self.words[CW_N_EVENTS])

    def reset(self) -> None:
        self.words[:] = 0

    def arrays(self) -> dict[str, np.ndarray]:
        """The filled part, as written to an event file."""
        n_snaps = int(self.words[CW_N_SNAPS])
        return {"events": self.events[: self.n_events], "frame_end": self.frame_end[: self.n_frames],
                "snap_rows": self.snap_rows[:n_snaps], "snap_frame": self.snap_frame[:n_snaps],
                "snap_symbol": self.snap_symbol[:n_snaps]}


@dataclass
class FeedCounts:
    """What the feed engine counted over the inputs (its ``stats_dict``) and the messages read."""

    messages: int = 0
    files: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


class FrameSource:
    """Recordings -> chunks of frames, through the feed process's own engine (the module docstring).

    ``chunks()`` yields the same ``ChunkBuffer`` again and again, filled with the next frames: use it before
    asking for the next. Symbols are the config's (``hft.feed.specs.symbol_specs``, as the feed process builds
    them for a replay).
    """

    def __init__(self, config: Config, paths: list[str], log: logging.Logger, frames_per_chunk: int = 8192) -> None:
        self.paths = [str(p) for p in paths]
        self.log = log
        self.engine = FeedEngine(symbol_specs(config, log))
        n_symbols = len(config.symbols)
        room = self.engine.events.shape[0]
        self.buffer = ChunkBuffer.allocate(frames_per_chunk, max(room, 16 * frames_per_chunk) + room,
                                           n_symbols * frames_per_chunk // 4 + n_symbols)
        self.rows = self.engine.snapshots.view(np.int64).reshape(len(self.engine.snapshots), SLOT_WORDS)
        self.counts = FeedCounts(files=self.paths)
        self._last_ts = -1

    def chunks(self) -> Iterator[ChunkBuffer]:
        engine, buffer, rows = self.engine, self.buffer, self.rows
        on_frame, on_snapshot = engine.on_frame, engine.on_snapshot
        dirty, events, chunk = engine.dirty, engine.events, buffer.ref
        append_frame = append_entry()
        messages = 0
        try:
            for ts, kind, symbol, payload in open_recordings(self.paths):  # Recorded, unpacked
                messages += 1
                if kind == FRAME:
                    # stamped with the recording's receive clock, as a lock-step replay stamps bookTickers
                    n = on_frame(payload, ts, ts)
                else:
                    n = on_snapshot(symbol, payload, ts)
                    if n > 0:
                        self.log.info("%s book synced from recorded snapshot (%d events)", symbol, n)
                    n = max(n, 0)
                if not append_frame(chunk, events, n, rows, dirty):
                    yield buffer
                    buffer.reset()
                    if not append_frame(chunk, events, n, rows, dirty):
                        raise EventsError(f"a frame of {n} events does not fit a chunk")
        except (RecordingError, OSError) as exc:
            raise EventsError(str(exc)) from None
        self.counts.messages = messages
        self.counts.stats = engine.stats_dict()
        if buffer.n_frames > 0:
            yield buffer


def backtest_config(config: Config) -> Config:
    """The config as a lock-step replay runs it: market data from files (the venue is never asked for its grid),
    and the broker lets orders arrive by market data alone."""
    source = msgspec.structs.replace(config.source, kind="replay", lockstep=True, replay_speed=0.0,
                                     replay_path=config.source.replay_path or "(backtest inputs)")
    return msgspec.structs.replace(config, source=source)


def symbols_meta(config: Config) -> list[dict]:
    return [{"name": s.name, "price_decimals": s.price_decimals, "size_decimals": s.size_decimals,
             "tick_size": s.tick_size, "lot_size": s.lot_size} for s in config.symbols]


def write_events(config: Config, paths: list[str], out: str | os.PathLike[str], log: logging.Logger) -> dict:
    """Decode recordings once (``FrameSource``) and write the chunk arrays and metadata to ``out`` (.npz)."""
    source = FrameSource(backtest_config(config), paths, log)
    parts: dict[str, list[np.ndarray]] = {}
    frames = events = 0
    for buffer in source.chunks():
        arrays = buffer.arrays()
        arrays["frame_end"] = arrays["frame_end"] + events  # file-global event indices
        arrays["snap_frame"] = arrays["snap_frame"] + frames
        frames += buffer.n_frames
        events += buffer.n_events
        for name, values in arrays.items():
            parts.setdefault(name, []).append(values.copy())
    if frames == 0 or source.counts.stats.get("snapshots_applied", 0) == 0:
        raise EventsError(f"{', '.join(paths)}: no depth snapshot in the inputs, so no book was ever synced (a "
                          "recording holds the REST snapshots it started from)")
    merged = {name: np.concatenate(values) for name, values in parts.items()}
    meta = {"format": EVENTS_FORMAT, "version": EVENTS_VERSION, "symbols": symbols_meta(config),
            "sources": [os.path.abspath(p) for p in paths], "messages": source.counts.messages,
            "feed": source.counts.stats, "frames": frames, "events": events}
    out = Path(out)
    if out.suffix != EVENTS_SUFFIX:
        raise EventsError(f"{out}: an event file's name ends in {EVENTS_SUFFIX}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **merged)
    os.replace(tmp, out)
    return meta


def is_event_file(path: str | os.PathLike[str]) -> bool:
    return str(path).endswith(EVENTS_SUFFIX)


def _load_meta(data, path) -> dict:
    meta = json.loads(bytes(data["meta"]).decode())
    if meta.get("format") != EVENTS_FORMAT or meta.get("version") != EVENTS_VERSION:
        raise EventsError(f"{path}: event file format {meta.get('format')} v{meta.get('version')}, this build "
                          f"reads {EVENTS_FORMAT} v{EVENTS_VERSION}: convert the recording again")
    return meta


def event_file_symbols(path: str | os.PathLike[str]) -> list[dict]:
    """The symbols (SymbolConfig fields) an event file was converted with."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return _load_meta(data, path)["symbols"]
    except EventsError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise EventsError(f"{path}: not an event file written by `hft convert` ({exc})") from None


def read_events(path: str | os.PathLike[str], config: Config) -> tuple[ChunkBuffer, dict]:
    """Load an event file as one chunk; its symbols must be the config's (same names, decimals and grid)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = _load_meta(data, path)
            arrays = {name: np.ascontiguousarray(data[name]) for name in
                      ("events", "frame_end", "snap_rows", "snap_frame", "snap_symbol")}
        if arrays["events"].dtype == MD_EVENT:
            arrays["events"] = arrays["events"].view(MD_EVENT)  # .npz keeps the fields, not the alignment flag
    except EventsError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise EventsError(f"{path}: not an event file written by `hft convert` ({exc})") from None
    if meta["symbols"] != symbols_meta(config):
        raise EventsError(f"{path}: converted for symbols {[s['name'] for s in meta['symbols']]} with other "
                          "decimals or grid than the config's: convert it again with this config")
    if arrays["events"].dtype != MD_EVENT or arrays["snap_rows"].shape[1:] != (SLOT_WORDS,):
        raise EventsError(f"{path}: records of another layout: convert the recording again")
    words = np.zeros(N_CW, np.int64)
    words[CW_N_FRAMES] = len(arrays["frame_end"])
    words[CW_N_EVENTS] = len(arrays["events"])
    words[CW_N_SNAPS] = len(arrays["snap_rows"])
    buffer = ChunkBuffer(words, arrays["events"], arrays["frame_end"], arrays["snap_rows"], arrays["snap_frame"],
                         arrays["snap_symbol"])
    return buffer, meta
