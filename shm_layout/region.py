"""Shared-memory regions: one POSIX segment each, a self-describing header, one owner.

Byte layout of every segment::

    0    REGION_HEADER (128 bytes): magic, layout_version, layout_hash, record_size, capacity,
         creator_pid, generation, created_ns, region_kind, body_offset, body_bytes
    128  body (ring control + slots, seqlock slots, or the control block), page-aligned mapping so the
         body starts on a cache line

Invariants:

* Only the supervisor creates and unlinks a region (``create_region`` / ``Region.unlink``), exactly once.
  Workers ``attach_region`` and ``close``; they never unlink.
* The header is written once, before any worker is started, and never changes afterwards.
* Attaching checks magic, layout version, layout hash, kind, record size and capacity, and refuses with a
  message naming every field that differs: a build with another layout must never read this memory.
* Segments are opened through ``_posixshmem`` directly, never through ``multiprocessing.shared_memory``:
  on Python <= 3.12 ``SharedMemory`` registers every attach with the resource_tracker, which unlinks the
  segment when the *attaching* process exits (CPython gh-82300) and warns about "leaked" segments. Ownership
  here is explicit instead: the supervisor unlinks in its shutdown path, and a segment left by a supervisor
  that died is found by ``find_segments`` (creator pid no longer alive) and removed by ``hft clean``.
* Segments are created with mode 0600 and ``O_EXCL``: another user cannot read them, and a name collision is an
  error, not a silent reuse (a re-created segment is a new object that stale mappings would never see).
"""

from __future__ import annotations

import _posixshmem
import contextlib
import mmap
import os
import time
from dataclasses import dataclass

import numpy as np

from shm_layout.records import LAYOUT_HASH, LAYOUT_VERSION, MAGIC, REGION_HEADER

SHM_DIR = "/dev/shm"
NAME_PREFIX = "hft."  # every segment of this product: hft.<instance>.<region>
HEADER_BYTES = REGION_HEADER.itemsize
SEGMENT_MODE = 0o600

KIND_CONTROL = 1
KIND_RING = 2
KIND_SEQLOCK = 3
KIND_NAMES = {KIND_CONTROL: "control", KIND_RING: "ring", KIND_SEQLOCK: "seqlock"}


class LayoutMismatchError(RuntimeError):
    """The segment was created by a build with another memory layout, or for another purpose."""


class RegionMissingError(FileNotFoundError):
    """No segment of that name exists (no pipeline running under that instance name)."""


def segment_name(instance: str, region: str) -> str:
    """Return the POSIX name of a region: ``hft.<instance>.<region>``."""
    if not instance or "/" in instance or "." in instance:
        raise ValueError(f"instance name must be non-empty without '/' or '.': {instance!r}")
    return f"{NAME_PREFIX}{instance}.{region}"


@dataclass
class Region:
    """A mapped segment: ``header`` (one REGION_HEADER record) and ``body`` (uint8 view after the header)."""

    name: str
    owner: bool
    readonly: bool
    _mmap: mmap.mmap
    header: np.ndarray
    body: np.ndarray
    _unlinked: bool = False

    @property
    def size(self) -> int:
        return len(self._mmap)

    def view(self, dtype: np.dtype, offset: int = 0, count: int = 1) -> np.ndarray:
        """Return ``count`` records of ``dtype`` at ``offset`` bytes into the body (a view, not a copy)."""
        dtype = np.dtype(dtype)
        end = offset + dtype.itemsize * count
        if end > self.body.size:
            raise ValueError(f"{self.name}: view of {end} bytes exceeds body of {self.body.size}")
        return self.body[offset:end].view(dtype)

    def close(self) -> None:
        """Unmap this process's mapping; the segment itself stays until its owner unlinks it."""
        self.header = None  # type: ignore[assignment]
        self.body = None  # type: ignore[assignment]
        # BufferError: numpy views of the mapping are still alive in this process; the mapping is released
        # with them at exit. The segment's lifetime does not depend on it.
        with contextlib.suppress(BufferError):
            self._mmap.close()

    def unlink(self) -> None:
        """Remove the segment name (owner only, idempotent): processes still mapping it keep their mapping."""
        if not self.owner:
            raise PermissionError(f"{self.name}: only the creating process may unlink a region")
        if self._unlinked:
            return
        self._unlinked = True
        with contextlib.suppress(FileNotFoundError):
            _posixshmem.shm_unlink("/" + self.name)


def _map(name: str, size: int | None, create: bool, readonly: bool) -> mmap.mmap:
    flags = os.O_RDONLY if readonly else os.O_RDWR
    if create:
        flags |= os.O_CREAT | os.O_EXCL
    fd = _posixshmem.shm_open("/" + name, flags, mode=SEGMENT_MODE)
    try:
        if create:
            os.ftruncate(fd, size)
        actual = os.fstat(fd).st_size
        if actual < HEADER_BYTES:
            raise LayoutMismatchError(f"{name}: segment is {actual} bytes, smaller than a region header")
        prot = mmap.PROT_READ if readonly else mmap.PROT_READ | mmap.PROT_WRITE
        return mmap.mmap(fd, actual, flags=mmap.MAP_SHARED, prot=prot)
    finally:
        os.close(fd)


def _wrap(name: str, mapped: mmap.mmap, owner: bool, readonly: bool) -> Region:
    raw = np.frombuffer(mapped, dtype=np.uint8)  # read-only arrays when the mapping is PROT_READ
    header = raw[:HEADER_BYTES].view(REGION_HEADER)
    body = raw[HEADER_BYTES:]
    return Region(name=name, owner=owner, readonly=readonly, _mmap=mapped, header=header, body=body)


def create_region(
    name: str, kind: int, record_size: int, capacity: int, body_bytes: int, generation: int
) -> Region:
    """Create and zero a segment and write its header (supervisor only; fails if the name exists)."""
    size = HEADER_BYTES + body_bytes
    mapped = _map(name, size, create=True, readonly=False)
    region = _wrap(name, mapped, owner=True, readonly=False)
    header = region.header[0]
    header["layout_version"] = LAYOUT_VERSION
    header["layout_hash"] = LAYOUT_HASH
    header["record_size"] = record_size
    header["capacity"] = capacity
    header["creator_pid"] = os.getpid()
    header["generation"] = generation
    header["created_ns"] = time.time_ns()
    header["region_kind"] = kind
    header["body_offset"] = HEADER_BYTES
    header["body_bytes"] = body_bytes
    header["magic"] = MAGIC  # last: a reader that sees the magic sees a complete header
    return region


def describe_mismatch(
    header: np.void, kind: int, record_size: int, capacity: int | None, generation: int | None
) -> list[str]:
    """Return one line per header field that differs from what this build expects (empty: compatible)."""
    problems = []
    if int(header["magic"]) != MAGIC:
        return [f"magic is {int(header['magic']):#x}, expected {MAGIC:#x} (not an hft region)"]
    if int(header["layout_version"]) != LAYOUT_VERSION:
        problems.append(f"layout version {int(header['layout_version'])}, this build has {LAYOUT_VERSION}")
    if int(header["layout_hash"]) != LAYOUT_HASH:
        problems.append(
            f"record layout hash {int(header['layout_hash']) & (2**64 - 1):#018x}, this build has "
            f"{LAYOUT_HASH & (2**64 - 1):#018x} (a record dtype changed)"
        )
    if int(header["region_kind"]) != kind:
        actual = KIND_NAMES.get(int(header["region_kind"]), str(int(header["region_kind"])))
        problems.append(f"region kind {actual}, expected {KIND_NAMES.get(kind, kind)}")
    if int(header["record_size"]) != record_size:
        problems.append(f"record size {int(header['record_size'])} bytes, expected {record_size}")
    if capacity is not None and int(header["capacity"]) != capacity:
        problems.append(f"capacity {int(header['capacity'])}, expected {capacity}")
    if generation is not None and int(header["generation"]) != generation:
        problems.append(
            f"generation {int(header['generation'])}, expected {generation} (segment re-created by another run)"
        )
    return problems


def attach_region(
    name: str,
    kind: int,
    record_size: int,
    capacity: int | None = None,
    generation: int | None = None,
    readonly: bool = False,
) -> Region:
    """Map an existing segment after checking its header; raise ``LayoutMismatchError`` saying what differs."""
    try:
        mapped = _map(name, None, create=False, readonly=readonly)
    except FileNotFoundError as exc:
        raise RegionMissingError(f"no shared-memory region {name!r} (is the pipeline running?)") from exc
    region = _wrap(name, mapped, owner=False, readonly=readonly)
    problems = describe_mismatch(region.header[0], kind, record_size, capacity, generation)
    if problems:
        region.close()
        raise LayoutMismatchError(f"refusing to attach {name}: " + "; ".join(problems))
    return region


@dataclass(frozen=True)
class SegmentInfo:
    """What ``find_segments`` learns about one segment without attaching to it for writing."""

    name: str
    size: int
    is_hft: bool  # header magic matches this product
    creator_pid: int
    creator_alive: bool


def pid_alive(pid: int) -> bool:
    """Return whether a process with that pid exists (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (FileNotFoundError, IndexError):
        return False


def find_segments(instance: str | None = None) -> list[SegmentInfo]:
    """List this product's segments in /dev/shm (of one instance, or all), reading only their headers."""
    prefix = NAME_PREFIX if instance is None else f"{NAME_PREFIX}{instance}."
    found = []
    try:
        names = sorted(os.listdir(SHM_DIR))
    except FileNotFoundError:
        return []
    for entry in names:
        if not entry.startswith(prefix):
            continue
        path = os.path.join(SHM_DIR, entry)
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as segment:
                raw = segment.read(HEADER_BYTES)
        except OSError:
            continue
        is_hft = len(raw) == HEADER_BYTES
        creator = 0
        if is_hft:
            header = np.frombuffer(raw, dtype=REGION_HEADER)[0]
            is_hft = int(header["magic"]) == MAGIC
            creator = int(header["creator_pid"]) if is_hft else 0
        found.append(SegmentInfo(entry, size, is_hft, creator, pid_alive(creator)))
    return found


def remove_segment(name: str) -> bool:
    """Unlink a segment by name (``hft clean`` only); return whether it existed."""
    try:
        _posixshmem.shm_unlink("/" + name)
        return True
    except FileNotFoundError:
        return False
