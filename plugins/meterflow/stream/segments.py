"""Durable segments: packets appended and fsync'ed before they are acknowledged.

One writer thread owns the open segment. Request handlers hand it bytes (whole lines) and wait;
the thread takes everything that queued up while the previous fsync ran, writes it with one
``write`` and makes it durable with one ``fdatasync`` (group commit), then wakes every waiter.
So a 2xx always means "on disk", and concurrent requests share the cost of an fsync.

Life of a segment file:

1. opened as ``<open_dir>/packets-<UTC yyyymmddTHHMMSSZ>-<pid>-<seq>.jsonl.part`` (the directory
   is fsync'ed so the file itself survives a power cut), and ``flock``-ed by its writer;
2. appended to in groups, each group fsync'ed before its requests are answered;
3. closed when it reaches the size limit or the age limit (or on a clean stop): fsync'ed, then
   renamed atomically with ``os.replace`` to ``<landing>/stream/packets-…jsonl`` and both
   directories fsync'ed. The FileSensor only ever sees whole files.

On start, ``recover()`` closes every ``.part`` file whose writer is gone (its flock is free:
the kernel drops it when a process dies, SIGKILL included): a torn last line (a write cut short
by a power cut, never acknowledged) is cut off, and the rest is renamed into the landing folder
like any closed segment. A ``.part`` still locked belongs to a live writer and is left alone,
so several receiver processes may share one open directory.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "packets-"
SUFFIX = ".jsonl"
OPEN_SUFFIX = ".part"
GROUP_BYTES = 4 << 20  # most bytes written by one commit
Done = Callable[[BaseException | None], None]


class WriterUnavailable(RuntimeError):
    """The writer cannot store packets now (stopped, or the disk failed); the client retries."""


@dataclass
class _Pending:
    data: bytes
    packets: int
    done: Done


@dataclass
class Segment:
    name: str  # final name, packets-<stamp>-<pid>-<seq>.jsonl
    path: Path  # where it is while open
    fd: int
    opened: float = field(default_factory=time.monotonic)
    bytes: int = 0
    packets: int = 0

    def age(self) -> float:
        return time.monotonic() - self.opened


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class SegmentWriter:
    """Appends lines to rotating segment files with group commit; see the module docstring."""

    def __init__(
        self,
        landing_dir: Path,
        open_dir: Path,
        *,
        max_bytes: int = 64 << 20,
        max_age: float = 300.0,
        fsync: bool = True,
        max_group: int = 0,
    ) -> None:
        self.out_dir = Path(landing_dir) / "stream"
        self.open_dir = Path(open_dir)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.fsync = fsync  # False only for the benchmark's upper bound: loses data on power cut
        self.max_group = max_group  # 0 = unbounded; 1 = an fsync per request (bench baseline)
        self.current: Segment | None = None
        self.broken: str | None = None
        self.counters = {
            "accepted_packets": 0,
            "accepted_requests": 0,
            "commits": 0,
            "largest_group": 0,
            "segments_closed": 0,
            "segments_recovered": 0,
            "write_errors": 0,
        }
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._seq = 0

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> list[Path]:
        """Create the folders, recover segments left open by a dead writer, start the thread."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.open_dir.mkdir(parents=True, exist_ok=True)
        if os.stat(self.out_dir).st_dev != os.stat(self.open_dir).st_dev:
            raise RuntimeError(
                f"open segments ({self.open_dir}) and the landing folder ({self.out_dir}) must be "
                "on one filesystem so that closing a segment is an atomic rename; "
                "set MF_STREAM_OPEN_DIR to a folder next to the landing folder"
            )
        recovered = self.recover()
        self._thread = threading.Thread(target=self._run, name="segment-writer", daemon=True)
        self._thread.start()
        return recovered

    def stop(self) -> None:
        """Write what is queued, close the open segment into the landing folder, stop."""
        if self._thread is None:
            return
        self._stopping = True
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    # -- the request side ---------------------------------------------------------------------

    def submit(self, data: bytes, packets: int, done: Done) -> None:
        """Queue whole lines; ``done(None)`` once they are on disk, ``done(exc)`` if not."""
        if self.broken or self._stopping or self._thread is None or not self._thread.is_alive():
            done(WriterUnavailable(self.broken or "the segment writer is not running"))
            return
        self._queue.put(_Pending(data, packets, done))
        if self.broken:  # the writer broke between the check and the put: answer, never hang
            self._refuse_queued()

    def write(self, data: bytes, packets: int, timeout: float = 30.0) -> None:
        """Blocking ``submit`` (for scripts and tests)."""
        finished = threading.Event()
        outcome: list[BaseException | None] = []

        def done(exc: BaseException | None) -> None:
            outcome.append(exc)
            finished.set()

        self.submit(data, packets, done)
        if not finished.wait(timeout):
            raise TimeoutError("the segment writer did not answer")
        if outcome[0] is not None:
            raise outcome[0]

    def status(self) -> dict:
        seg = self.current
        return {
            **self.counters,
            "broken": self.broken,
            "current_segment": None
            if seg is None
            else {
                "name": seg.name,
                "packets": seg.packets,
                "bytes": seg.bytes,
                "age_seconds": round(seg.age(), 3),
            },
        }

    # -- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        """The writer loop; any fault it cannot handle marks the writer broken (health 503,
        every queued and later request answered 503) instead of letting the thread die
        silently with requests waiting on it for ever."""
        try:
            self._loop()
        except BaseException as exc:  # the thread must not end with requests left waiting
            self.broken = f"the segment writer stopped: {type(exc).__name__}: {exc}"
            log.critical(self.broken)
            self._refuse_queued()

    def _refuse_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.done(WriterUnavailable(self.broken or "the segment writer is not running"))

    def _loop(self) -> None:
        stop = False
        while not stop:
            seg = self.current
            timeout = None if seg is None else max(0.0, self.max_age - seg.age())
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._close_current("age")
                continue
            if first is None:
                break
            batch, size = [first], len(first.data)
            while size < GROUP_BYTES and (not self.max_group or len(batch) < self.max_group):
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                size += len(item.data)
            self._commit(batch)
            if self.current is not None and self.current.age() >= self.max_age:
                self._close_current("age")
        # Anything that raced the stop marker is refused rather than left waiting.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.done(WriterUnavailable("the receiver is stopping"))
        self._close_current("stop")

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            seg = self.current or self._open()
        except OSError as exc:
            self._fail(batch, exc)
            return
        data = b"".join(p.data for p in batch)
        try:
            _write_all(seg.fd, data)
            if self.fsync:
                os.fdatasync(seg.fd)
        except OSError as exc:
            self._fail(batch, exc)
            self._undo(seg)
            return
        seg.bytes += len(data)
        packets = sum(p.packets for p in batch)
        seg.packets += packets
        c = self.counters
        c["accepted_packets"] += packets
        c["accepted_requests"] += len(batch)
        c["commits"] += 1
        c["largest_group"] = max(c["largest_group"], len(batch))
        for p in batch:
            p.done(None)
        if seg.bytes >= self.max_bytes:
            self._close_current("size")

    def _fail(self, batch: list[_Pending], exc: OSError) -> None:
        self.counters["write_errors"] += 1
        log.error("could not store %d request(s): %s", len(batch), exc)
        error = WriterUnavailable(f"could not store the packets: {exc.strerror or exc}")
        for p in batch:
            p.done(error)

    def _undo(self, seg: Segment) -> None:
        """After a failed write: cut the segment back to its acknowledged bytes and close it."""
        try:
            os.ftruncate(seg.fd, seg.bytes)
            os.fsync(seg.fd)
            self._close_current("write error")
        except OSError as exc:
            self.broken = f"segment {seg.path} is in an unknown state after a failed write: {exc}"
            log.critical(self.broken)

    # -- segment files ------------------------------------------------------------------------

    def _open(self) -> Segment:
        pid = os.getpid()
        while True:
            self._seq += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            name = f"{PREFIX}{stamp}-{pid}-{self._seq}{SUFFIX}"
            path = self.open_dir / (name + OPEN_SUFFIX)
            if (self.out_dir / name).exists():
                continue  # a restarted process with a reused pid in the same second
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            break
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_dir(self.open_dir)  # the new file's name is durable before anything is acked
        self.current = Segment(name=name, path=path, fd=fd)
        return self.current

    def _close_current(self, why: str) -> None:
        seg, self.current = self.current, None
        if seg is None:
            return
        try:
            if seg.bytes == 0:
                os.unlink(seg.path)
                return
            os.fsync(seg.fd)
            self._publish(seg.path, seg.name)
            self.counters["segments_closed"] += 1
            log.info(
                "closed segment %s (%s): %d packets, %d bytes",
                seg.name,
                why,
                seg.packets,
                seg.bytes,
            )
        finally:
            os.close(seg.fd)

    def _publish(self, path: Path, name: str) -> Path:
        target = self.out_dir / name
        os.replace(path, target)
        _fsync_dir(self.out_dir)
        _fsync_dir(self.open_dir)
        return target

    def recover(self) -> list[Path]:
        """Close every segment left open by a writer that is gone; returns the closed files."""
        closed = []
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in sorted(self.open_dir.glob(f"{PREFIX}*{OPEN_SUFFIX}.tmp")):
            stale.unlink()  # a rewrite that did not finish; its .part is still whole
        for path in sorted(self.open_dir.glob(f"{PREFIX}*{SUFFIX}{OPEN_SUFFIX}")):
            fd = os.open(path, os.O_RDWR)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EACCES):
                        continue  # a live writer owns it
                    raise
                name = path.name[: -len(OPEN_SUFFIX)]
                kept, dropped = self._repair(path, fd)
                if kept == 0:
                    path.unlink()
                    _fsync_dir(self.open_dir)
                    log.warning("removed empty segment %s left by a stopped writer", name)
                    continue
                os.fsync(fd)
                closed.append(self._publish(path, name))
                self.counters["segments_recovered"] += 1
                log.warning(
                    "recovered segment %s left open by a stopped writer: %d packets kept, "
                    "%d bytes of unacknowledged torn lines dropped",
                    name,
                    kept,
                    dropped,
                )
            finally:
                os.close(fd)
        return closed

    def _repair(self, path: Path, fd: int) -> tuple[int, int]:
        """Keep the whole, parseable lines of an open segment; (lines kept, bytes dropped)."""
        data = path.read_bytes()
        lines = data.split(b"\n")
        lines.pop()  # after the last newline: empty, or a write cut short (never acknowledged)
        good = []
        for line in lines:
            try:
                if isinstance(json.loads(line), dict):
                    good.append(line + b"\n")
            except ValueError:
                pass
        content = b"".join(good)
        if len(content) == len(data):
            return len(good), 0
        if len(good) == len(lines):
            os.ftruncate(fd, len(content))  # only the torn tail goes
        else:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(content)
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(self.open_dir)
        return len(good), len(data) - len(content)
