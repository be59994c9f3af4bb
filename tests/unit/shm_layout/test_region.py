"""Shared-memory regions (shm_layout/region.py): lifecycle, header checks, ownership, discovery."""

from __future__ import annotations

import _posixshmem
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from shm_layout.records import LAYOUT_HASH, LAYOUT_VERSION, MAGIC, REGION_HEADER
from shm_layout.region import (
    HEADER_BYTES,
    KIND_CONTROL,
    KIND_RING,
    KIND_SEQLOCK,
    NAME_PREFIX,
    SEGMENT_MODE,
    SHM_DIR,
    LayoutMismatchError,
    Region,
    RegionMissingError,
    attach_region,
    create_region,
    describe_mismatch,
    find_segments,
    pid_alive,
    remove_segment,
    segment_name,
)
from tests.unit.shm_layout import _workers

REPO_ROOT = str(Path(__file__).resolve().parents[3])
RECORD = 64
CAPACITY = 16
BODY = RECORD * CAPACITY
GENERATION = 77


def _path(name: str) -> str:
    return os.path.join(SHM_DIR, name)


def _run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture
def region(instance: str):
    created = create_region(segment_name(instance, "r"), KIND_RING, RECORD, CAPACITY, BODY, GENERATION)
    yield created
    created.unlink()
    created.close()


# ----------------------------------------------------------------------------------------------- names


def test_segment_name_when_valid_instance_then_prefixed() -> None:
    assert segment_name("paper1", "md.events") == "hft.paper1.md.events"
    assert NAME_PREFIX == "hft."


@pytest.mark.parametrize("bad", ["", "a.b", "a/b", "/"])
def test_segment_name_when_instance_has_dot_slash_or_is_empty_then_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        segment_name(bad, "control")


# ------------------------------------------------------------------------------------------- create/attach


def test_create_region_when_new_then_file_in_dev_shm_with_mode_0600(region: Region) -> None:
    info = os.stat(_path(region.name))
    assert stat.S_IMODE(info.st_mode) == SEGMENT_MODE == 0o600
    assert info.st_size == HEADER_BYTES + BODY == region.size
    assert info.st_uid == os.getuid()


def test_create_region_when_new_then_header_fields_written(region: Region) -> None:
    before = time.time_ns()
    header = region.header[0]
    assert int(header["magic"]) == MAGIC
    assert int(header["layout_version"]) == LAYOUT_VERSION
    assert int(header["layout_hash"]) == LAYOUT_HASH
    assert int(header["record_size"]) == RECORD
    assert int(header["capacity"]) == CAPACITY
    assert int(header["creator_pid"]) == os.getpid()
    assert int(header["generation"]) == GENERATION
    assert before - 60_000_000_000 < int(header["created_ns"]) <= before
    assert int(header["region_kind"]) == KIND_RING
    assert int(header["body_offset"]) == HEADER_BYTES
    assert int(header["body_bytes"]) == BODY
    assert header["spare"].tolist() == [0] * 5
    assert region.owner and not region.readonly


def test_create_region_when_new_then_body_zeroed_and_sized(region: Region) -> None:
    assert region.body.size == BODY
    assert not region.body.any()


def test_create_region_when_name_exists_then_file_exists_error_and_original_untouched(region: Region) -> None:
    region.body[:4] = [1, 2, 3, 4]
    with pytest.raises(FileExistsError):
        create_region(region.name, KIND_SEQLOCK, 32, 2, 64, GENERATION + 1)
    again = attach_region(region.name, KIND_RING, RECORD, CAPACITY, GENERATION)
    assert again.body[:4].tolist() == [1, 2, 3, 4]
    assert again.size == HEADER_BYTES + BODY
    again.close()


def test_attach_region_when_layout_matches_then_shares_memory_with_creator(region: Region) -> None:
    attached = attach_region(region.name, KIND_RING, RECORD, CAPACITY, GENERATION)
    assert not attached.owner
    attached.body[10] = 99
    assert region.body[10] == 99
    region.view(np.int64, 64, 2)[:] = [5, -6]
    assert attached.view(np.int64, 64, 2).tolist() == [5, -6]
    assert attached.header.tobytes() == region.header.tobytes()
    attached.close()


def test_attach_region_when_capacity_and_generation_omitted_then_not_checked(region: Region) -> None:
    attached = attach_region(region.name, KIND_RING, RECORD)
    assert int(attached.header[0]["capacity"]) == CAPACITY
    attached.close()


def test_region_view_when_past_end_of_body_then_value_error(region: Region) -> None:
    assert region.view(np.int64, BODY - 8).shape == (1,)
    with pytest.raises(ValueError, match="exceeds body"):
        region.view(np.int64, BODY - 8, 2)


def test_attach_region_when_readonly_then_arrays_refuse_writes(region: Region) -> None:
    region.body[0] = 5
    reader = attach_region(region.name, KIND_RING, RECORD, CAPACITY, GENERATION, readonly=True)
    assert reader.readonly
    assert reader.body[0] == 5
    with pytest.raises(ValueError, match="read-only"):
        reader.body[0] = 6
    with pytest.raises(ValueError, match="read-only"):
        reader.header["generation"] = 1
    assert region.body[0] == 5
    reader.close()


# ------------------------------------------------------------------------------------------- mismatches


@pytest.mark.parametrize(
    ("attach_args", "field_text"),
    [
        ({"kind": KIND_RING, "record_size": RECORD * 2, "capacity": CAPACITY, "generation": GENERATION},
         "record size"),
        ({"kind": KIND_RING, "record_size": RECORD, "capacity": CAPACITY * 2, "generation": GENERATION}, "capacity"),
        ({"kind": KIND_SEQLOCK, "record_size": RECORD, "capacity": CAPACITY, "generation": GENERATION},
         "region kind"),
        ({"kind": KIND_RING, "record_size": RECORD, "capacity": CAPACITY, "generation": GENERATION + 1},
         "generation"),
    ],
    ids=["record_size", "capacity", "kind", "generation"],
)
def test_attach_region_when_parameter_differs_then_layout_mismatch_names_field(
    region: Region, attach_args: dict, field_text: str
) -> None:
    with pytest.raises(LayoutMismatchError, match=field_text) as info:
        attach_region(region.name, **attach_args)
    assert region.name in str(info.value)


@pytest.mark.parametrize(
    ("header_field", "value", "field_text"),
    [
        ("magic", 0x1234, "magic"),
        ("layout_hash", LAYOUT_HASH ^ 0x5A5A, "layout hash"),
        ("layout_version", LAYOUT_VERSION + 1, "layout version"),
    ],
)
def test_attach_region_when_header_written_by_other_build_then_layout_mismatch_names_field(
    region: Region, header_field: str, value: int, field_text: str
) -> None:
    region.header[0][header_field] = value
    with pytest.raises(LayoutMismatchError, match=field_text):
        attach_region(region.name, KIND_RING, RECORD, CAPACITY, GENERATION)


def test_attach_region_when_several_fields_differ_then_message_names_each(region: Region) -> None:
    region.header[0]["layout_hash"] = LAYOUT_HASH + 1
    with pytest.raises(LayoutMismatchError) as info:
        attach_region(region.name, KIND_CONTROL, RECORD + 8, CAPACITY + 1, GENERATION + 2)
    message = str(info.value)
    for text in ("layout hash", "region kind", "record size", "capacity", "generation"):
        assert text in message, f"{text!r} missing from {message!r}"


def test_describe_mismatch_when_header_matches_then_empty(region: Region) -> None:
    assert describe_mismatch(region.header[0], KIND_RING, RECORD, CAPACITY, GENERATION) == []


def test_attach_region_when_segment_smaller_than_header_then_layout_mismatch(instance: str) -> None:
    name = segment_name(instance, "tiny")
    fd = _posixshmem.shm_open("/" + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode=0o600)
    try:
        os.ftruncate(fd, 16)
    finally:
        os.close(fd)
    with pytest.raises(LayoutMismatchError, match="smaller than a region header"):
        attach_region(name, KIND_RING, RECORD)


def test_attach_region_when_name_missing_then_region_missing_error(instance: str) -> None:
    with pytest.raises(RegionMissingError, match="no shared-memory region") as info:
        attach_region(segment_name(instance, "absent"), KIND_RING, RECORD)
    assert isinstance(info.value, FileNotFoundError)


# ------------------------------------------------------------------------------------- close and unlink


def test_close_when_numpy_views_still_alive_then_no_error_and_segment_kept(region: Region) -> None:
    attached = attach_region(region.name, KIND_RING, RECORD)
    view = attached.view(np.int64, 0, 4)
    attached.close()  # the mapping is pinned by ``view``: must not raise
    view[0] = 3
    assert region.view(np.int64, 0, 1)[0] == 3
    assert os.path.exists(_path(region.name))


def test_unlink_when_called_twice_by_owner_then_second_is_noop(instance: str) -> None:
    created = create_region(segment_name(instance, "u"), KIND_RING, RECORD, CAPACITY, BODY, 1)
    created.unlink()
    assert not os.path.exists(_path(created.name))
    created.unlink()
    created.close()


def test_unlink_when_name_already_removed_by_someone_else_then_no_error(instance: str) -> None:
    created = create_region(segment_name(instance, "u"), KIND_RING, RECORD, CAPACITY, BODY, 1)
    assert remove_segment(created.name)
    created.unlink()
    created.close()


def test_unlink_when_called_by_non_owner_then_permission_error_and_segment_kept(region: Region) -> None:
    attached = attach_region(region.name, KIND_RING, RECORD)
    with pytest.raises(PermissionError):
        attached.unlink()
    assert os.path.exists(_path(region.name))
    attached.close()


def test_unlink_when_other_handles_still_mapped_then_they_keep_working(instance: str) -> None:
    created = create_region(segment_name(instance, "u"), KIND_RING, RECORD, CAPACITY, BODY, 1)
    attached = attach_region(created.name, KIND_RING, RECORD)
    created.unlink()
    with pytest.raises(RegionMissingError):
        attach_region(created.name, KIND_RING, RECORD)
    attached.body[1] = 17
    assert created.body[1] == 17
    attached.close()
    created.close()


def test_recreate_when_same_name_then_stale_mapping_sees_old_object_and_generation_refuses(instance: str) -> None:
    name = segment_name(instance, "g")
    first = create_region(name, KIND_RING, RECORD, CAPACITY, BODY, generation=1)
    stale = attach_region(name, KIND_RING, RECORD, CAPACITY, generation=1)
    first.unlink()
    second = create_region(name, KIND_RING, RECORD, CAPACITY, BODY, generation=2)
    second.body[0] = 1
    assert stale.body[0] == 0  # a new object: the old mapping never sees it
    assert int(stale.header[0]["generation"]) == 1
    with pytest.raises(LayoutMismatchError, match="generation 2, expected 1"):
        attach_region(name, KIND_RING, RECORD, CAPACITY, generation=1)
    stale.close()
    first.close()
    second.unlink()
    second.close()


# ------------------------------------------------------------------------------------- other processes

CHILD_ATTACHES = """
import sys
from shm_layout.region import KIND_RING, attach_region
closed = attach_region(sys.argv[1], KIND_RING, int(sys.argv[2]), int(sys.argv[3]))
closed.body[0] = 42
closed.close()
kept = attach_region(sys.argv[1], KIND_RING, int(sys.argv[2]), int(sys.argv[3]))  # still mapped at exit
view = kept.view(kept.body.dtype, 0, 8)
"""


def test_child_process_when_attaches_and_exits_then_segment_kept_and_stderr_silent(region: Region) -> None:
    result = _run_python(CHILD_ATTACHES, region.name, str(RECORD), str(CAPACITY))
    assert result.returncode == 0, result.stderr
    assert "resource_tracker" not in result.stderr
    assert "leaked" not in result.stderr
    assert result.stderr == ""
    time.sleep(0.2)  # a resource tracker would unlink shortly after the child's exit
    assert os.path.exists(_path(region.name))
    assert region.body[0] == 42
    again = attach_region(region.name, KIND_RING, RECORD, CAPACITY, GENERATION)
    again.close()


def test_spawned_child_when_attaches_and_exits_then_segment_kept(region: Region, children) -> None:
    children.start(_workers.attach_and_exit, region.name, RECORD, CAPACITY)
    tag, pid, generation = children.results(1, timeout=30)[0]
    children.join(timeout=10)
    assert (tag, generation) == ("attached", GENERATION)
    assert pid != os.getpid()
    time.sleep(0.2)
    assert os.path.exists(_path(region.name))
    assert region.body[0] == 42
    assert int(region.header[0]["creator_pid"]) == os.getpid()


CHILD_CREATES = """
import os, sys
from shm_layout.region import KIND_RING, create_region
create_region(sys.argv[1], KIND_RING, 64, 4, 256, 5)
print(os.getpid())
"""


def test_find_segments_when_creator_exited_without_unlink_then_creator_not_alive(instance: str) -> None:
    orphan = segment_name(instance, "orphan")
    result = _run_python(CHILD_CREATES, orphan)
    assert result.returncode == 0, result.stderr
    child_pid = int(result.stdout.strip())
    mine = create_region(segment_name(instance, "mine"), KIND_RING, RECORD, CAPACITY, BODY, 1)
    try:
        found = {info.name: info for info in find_segments(instance)}
        assert set(found) == {orphan, mine.name}
        assert found[orphan].is_hft
        assert found[orphan].creator_pid == child_pid
        assert not found[orphan].creator_alive
        assert found[orphan].size == HEADER_BYTES + 256
        assert found[mine.name].is_hft
        assert found[mine.name].creator_pid == os.getpid()
        assert found[mine.name].creator_alive
        assert orphan in {info.name for info in find_segments()}  # the all-instances listing too
    finally:
        mine.unlink()
        mine.close()


def test_find_segments_when_other_names_present_then_only_hft_prefix_of_that_instance(instance: str) -> None:
    def raw_segment(name: str, size: int) -> None:
        fd = _posixshmem.shm_open("/" + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode=0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    raw_segment(f"x{instance}.control", 4096)  # another product
    raw_segment(f"hft{instance}.control", 4096)  # no dot after the prefix
    raw_segment(segment_name(instance, "junk"), 4096)  # our prefix, not our header
    raw_segment(segment_name(instance, "short"), 8)
    other = create_region(segment_name(instance + "b", "control"), KIND_RING, RECORD, 1, RECORD, 1)
    try:
        everything = {info.name for info in find_segments()}
        assert all(name.startswith(NAME_PREFIX) for name in everything)
        assert f"x{instance}.control" not in everything
        assert f"hft{instance}.control" not in everything
        found = {info.name: info for info in find_segments(instance)}
        assert set(found) == {segment_name(instance, "junk"), segment_name(instance, "short")}
        for info in found.values():
            assert not info.is_hft
            assert info.creator_pid == 0
            assert not info.creator_alive
        assert [info.name for info in find_segments(instance + "b")] == [other.name]
    finally:
        other.unlink()
        other.close()


def test_remove_segment_when_exists_then_true_and_gone_then_false(instance: str) -> None:
    created = create_region(segment_name(instance, "rm"), KIND_RING, RECORD, CAPACITY, BODY, 1)
    assert remove_segment(created.name) is True
    assert not os.path.exists(_path(created.name))
    assert remove_segment(created.name) is False
    with pytest.raises(RegionMissingError):
        attach_region(created.name, KIND_RING, RECORD)
    created.close()


def test_pid_alive_when_live_dead_zombie_or_invalid_then_only_live_true() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0)
    assert not pid_alive(-5)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while True:  # not reaped yet: a zombie once it exits
            with open(f"/proc/{child.pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    assert not pid_alive(child.pid)


def test_region_header_when_viewed_then_record_of_region_header_dtype(region: Region) -> None:
    assert region.header.dtype == REGION_HEADER
    assert region.header.shape == (1,)
