"""The segment writer: acknowledged lines are on disk, segments close whole into landing/stream/."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import time
from pathlib import Path

import pytest

from meterflow.stream.segments import SegmentWriter, WriterUnavailable


def line(n: int) -> bytes:
    stamp = f"2025-02-08T{n // 2 % 24:02d}:{31 if n % 2 else 1:02d}:00Z"
    return (
        json.dumps({"id": f"SMR{89134 + n:05d}A", "timestamp": stamp, "reading_kWh": 1.5}).encode()
        + b"\n"
    )


@pytest.fixture
def dirs(tmp_path) -> tuple[Path, Path]:
    return tmp_path / "landing", tmp_path / "open"


def closed(landing: Path) -> list[Path]:
    return sorted((landing / "stream").glob("packets-*.jsonl"))


def closed_lines(landing: Path) -> list[bytes]:
    return [ln + b"\n" for p in closed(landing) for ln in p.read_bytes().splitlines()]


def start(dirs, **kw) -> SegmentWriter:
    writer = SegmentWriter(*dirs, **kw)
    writer.start()
    return writer


def test_an_acknowledged_line_is_in_the_open_segment_on_disk(dirs):
    writer = start(dirs)
    try:
        writer.write(line(1), 1)
        seg = writer.current
        assert seg is not None and seg.path.suffix == ".part"
        assert seg.path.read_bytes() == line(1)
        assert closed(dirs[0]) == []  # the FileSensor sees nothing half-written
    finally:
        writer.stop()


def test_segments_close_at_the_size_limit_into_landing_stream(dirs):
    writer = start(dirs, max_bytes=3 * len(line(0)))
    try:
        for n in range(7):
            writer.write(line(n), 1)
        files = closed(dirs[0])
        assert len(files) == 2
        assert all(len(p.read_bytes().splitlines()) == 3 for p in files)
        name = files[0].name
        assert name.startswith("packets-") and name.endswith(f"-{os.getpid()}-1.jsonl")
    finally:
        writer.stop()
    assert closed_lines(dirs[0]) == [line(n) for n in range(7)]
    assert list(dirs[1].iterdir()) == []


def test_a_segment_closes_at_its_age_limit_without_new_packets(dirs):
    writer = start(dirs, max_age=0.3)
    try:
        writer.write(line(1), 1)
        deadline = time.monotonic() + 5
        while not closed(dirs[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert closed_lines(dirs[0]) == [line(1)]
        assert writer.current is None
    finally:
        writer.stop()


def test_stop_closes_the_open_segment_and_no_empty_segment_is_published(dirs):
    writer = start(dirs)
    writer.stop()
    assert closed(dirs[0]) == []
    writer = start(dirs)
    writer.write(line(1), 1)
    writer.stop()
    assert closed_lines(dirs[0]) == [line(1)]


def test_concurrent_requests_share_one_fsync(dirs, monkeypatch):
    writer = start(dirs)
    real = os.fdatasync
    gate = threading.Event()

    def slow_fdatasync(fd):
        gate.wait(5)  # hold the first commit until everyone else has queued
        real(fd)

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    try:
        threads = [threading.Thread(target=writer.write, args=(line(n), 1)) for n in range(20)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        gate.set()
        for t in threads:
            t.join()
        assert writer.counters["accepted_packets"] == 20
        assert writer.counters["commits"] <= 2
    finally:
        writer.stop()


def test_a_failed_fsync_is_not_acknowledged_and_leaves_only_acknowledged_lines(dirs, monkeypatch):
    writer = start(dirs)
    try:
        writer.write(line(1), 1)
        real = os.fdatasync

        def broken(fd):
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(os, "fdatasync", broken)
        with pytest.raises(WriterUnavailable, match="Input/output error"):
            writer.write(line(2), 1)
        monkeypatch.setattr(os, "fdatasync", real)
        writer.write(line(3), 1)  # a fresh segment after the failure
    finally:
        writer.stop()
    assert closed_lines(dirs[0]) == [line(1), line(3)]
    assert writer.counters["write_errors"] == 1


def test_recovery_closes_a_segment_left_by_a_dead_writer_and_cuts_its_torn_tail(dirs):
    landing, open_dir = dirs
    open_dir.mkdir(parents=True)
    left = open_dir / "packets-20250208T003100Z-4242-7.jsonl.part"
    left.write_bytes(line(1) + line(2) + b'{"id": "SMR891')  # killed mid-write
    writer = SegmentWriter(landing, open_dir)
    recovered = writer.start()
    writer.stop()
    assert [p.name for p in recovered] == ["packets-20250208T003100Z-4242-7.jsonl"]
    assert closed_lines(landing) == [line(1), line(2)]
    assert list(open_dir.iterdir()) == []
    assert writer.counters["segments_recovered"] == 1


def test_recovery_drops_garbage_lines_and_removes_an_empty_leftover(dirs):
    landing, open_dir = dirs
    open_dir.mkdir(parents=True)
    (open_dir / "packets-20250208T003100Z-1-1.jsonl.part").write_bytes(
        line(1) + b"\x00\x00\x00\n" + line(2)
    )
    (open_dir / "packets-20250208T003100Z-1-2.jsonl.part").write_bytes(b"")
    writer = SegmentWriter(landing, open_dir)
    writer.start()
    writer.stop()
    assert closed_lines(landing) == [line(1), line(2)]
    assert list(open_dir.iterdir()) == []


def test_recovery_leaves_a_segment_that_a_live_writer_holds(dirs):
    landing, open_dir = dirs
    live = start(dirs)
    try:
        live.write(line(1), 1)
        other = SegmentWriter(landing, open_dir)
        assert other.recover() == []
        assert live.current is not None and live.current.path.exists()
    finally:
        live.stop()
    assert closed_lines(landing) == [line(1)]


def test_flock_is_what_marks_a_live_writer(dirs):
    landing, open_dir = dirs
    open_dir.mkdir(parents=True)
    path = open_dir / "packets-20250208T003100Z-9-9.jsonl.part"
    path.write_bytes(line(1))
    with path.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert SegmentWriter(landing, open_dir).recover() == []
    assert len(SegmentWriter(landing, open_dir).recover()) == 1
