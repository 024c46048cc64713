"""The stream receiver as a real process: killed with SIGKILL under load it loses no
acknowledged packet, and ingestion then stages each of them exactly once; a 2xx leaves only
after fdatasync.

``crash_under_load`` is the scenario as a helper: it returns the acknowledged packets and leaves
the closed segments in ``<landing>/stream/`` for ingestion to take from there (the end-to-end
"every acknowledged packet is in the warehouse exactly once" check builds on it).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from meterflow import ingest
from meterflow.stream.simulate import meter_ids, schedule

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = "integration-token-5d2c"
NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)  # ingestion's clock: the packets are in its past


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ReceiverProcess:
    """``python -m meterflow.stream`` on a free port, with its folders under ``root``."""

    root: Path
    landing: Path
    segment_mb: float = 64.0
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    prefix: list[str] = field(default_factory=list)  # e.g. strace

    @property
    def open_dir(self) -> Path:
        return self.root / "stream-open"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]
            ),
            "MF_VAR": str(self.root / "var"),
            "MF_LANDING_DIR": str(self.landing),
            "MF_STREAM_OPEN_DIR": str(self.open_dir),
            "MF_STREAM_TOKEN": TOKEN,
            "MF_STREAM_SEGMENT_MB": str(self.segment_mb),
        }

    def start(self) -> ReceiverProcess:
        log = (self.root / "receiver.log").open("ab")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "meterflow.stream", "--port", str(self.port)],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "receiver.log").read_text()[-3000:]
            try:
                if self.get("/health")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("the receiver did not become healthy")

    def get(self, path: str) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    @property
    def pid(self) -> int:
        """The receiver's pid: with a prefix (strace), the child the prefix started.

        strace started with ``-o FILE PROG`` blocks fatal signals (its ``-I3`` default) and does
        not pass them on, so a signal meant for the receiver goes to the receiver itself.
        """
        assert self.proc is not None
        if not self.prefix:
            return self.proc.pid
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        (pid,) = children.split()
        return int(pid)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM, as docker and systemd stop it; the exit status (0 after a clean stop)."""
        os.kill(self.pid, signal.SIGTERM)
        return self.proc.wait(30)


def landed_lines(landing: Path) -> list[str]:
    """Every line of every closed segment in ``<landing>/stream/``."""
    files = sorted((landing / "stream").glob("packets-*.jsonl"))
    return [line for p in files for line in p.read_text("utf-8").splitlines()]


def key(packet: dict) -> str:
    return json.dumps(packet, sort_keys=True)


def load_until_killed(
    receiver: ReceiverProcess,
    packets: Iterable[dict],
    *,
    threads: int = 8,
    kill_after: int = 1500,
) -> list[dict]:
    """POST packets from a thread pool (1 or 3 per request); SIGKILL the receiver once
    ``kill_after`` are acknowledged; the packets that got a 200 before it died."""
    source: Iterator[dict] = iter(packets)
    lock = threading.Lock()
    acked: list[dict] = []
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
        size = 3 if n % 2 else 1
        while True:
            with lock:
                chunk = [p for p in (next(source, None) for _ in range(size)) if p is not None]
            if not chunk:
                return
            try:
                conn.request("POST", "/meter", json.dumps(chunk if size > 1 else chunk[0]), headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                return  # the receiver is gone; this request was never acknowledged
            if resp.status != 200:
                return
            acked.extend(chunk)

    pool = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < kill_after and time.monotonic() < deadline:
        time.sleep(0.005)
    receiver.kill()
    for t in pool:
        t.join(15)
    assert len(acked) >= kill_after, "the load did not reach the receiver"
    return list(acked)


def crash_under_load(
    root: Path, landing: Path, *, kill_after: int = 1500, segment_mb: float = 0.03
) -> list[dict]:
    """Receiver under load, SIGKILL, restart (recovers the open segment), clean stop.

    Returns the acknowledged packets; the closed segments are in ``<landing>/stream/``. Three
    days of 40 meters, each packet a distinct (meter, interval), so a warehouse check can count.
    """
    receiver = ReceiverProcess(root, landing, segment_mb=segment_mb).start()
    packets = schedule(meter_ids(40), date(2025, 2, 8), days=3)
    acked = load_until_killed(receiver, packets, kill_after=kill_after)
    left_open = list(receiver.open_dir.glob("*.part"))
    assert left_open and any(p.stat().st_size for p in left_open), "nothing was left open"
    receiver.start()  # same folders: recovery closes what the killed process left open
    status, metrics = receiver.get("/metrics")
    assert status == 200 and metrics["segments_recovered"] >= 1
    assert receiver.stop() == 0
    return acked


def test_a_receiver_killed_under_load_loses_no_acknowledged_packet(tmp_path):
    landing = tmp_path / "landing"
    acked = crash_under_load(tmp_path, landing)

    lines = landed_lines(landing)
    stored = [json.loads(line) for line in lines]  # every line whole and parseable
    assert len(lines) >= len(acked)
    assert len({key(p) for p in stored}) == len(stored)  # nothing stored twice
    missing = {key(p) for p in acked} - {key(p) for p in stored}
    assert missing == set()
    assert list((tmp_path / "stream-open").glob("*.part")) == []
    assert len(list((landing / "stream").glob("*.jsonl"))) >= 3  # rotated, then recovered


def interval_start(packet: dict) -> datetime:
    """The start of the half hour a packet reports: sent at 00:31, it reports 00:00-00:30."""
    sent = datetime.fromisoformat(packet["timestamp"]).astimezone(UTC)
    ended = sent.replace(minute=sent.minute - sent.minute % 30, second=0, microsecond=0)
    return ended - timedelta(minutes=30)


def test_after_a_crash_every_acknowledged_packet_is_ingested_exactly_once(
    tmp_path, db, landing, bucket
):
    acked = crash_under_load(tmp_path, landing)

    files = ingest.landed_files(landing)  # what the FileSensor hands on
    assert files and {f.parent.name for f in files} == {"stream"}
    results = [ingest.load_file(f, landing_dir=landing, now=NOW) for f in files]
    assert all(r.status == "staged" and r.rows_rejected == 0 for r in results)
    assert ingest.landed_files(landing) == []

    rows = db.execute(
        "SELECT meter_id, interval_start, kwh, count(*) OVER (PARTITION BY meter_id, "
        "interval_start) FROM staging.reading"
    ).fetchall()
    assert max(n for *_, n in rows) == 1  # no reading twice, acknowledged or not
    stored = {(m, t): kwh for m, t, kwh, _ in rows}
    expected = {(p["id"], interval_start(p)): Decimal(str(p["reading_kWh"])) for p in acked}
    assert len(expected) == len(acked)
    assert {k: stored.get(k) for k in expected} == expected
    assert sum(r.rows_staged for r in results) == len(rows) >= len(acked)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (make test installs it)")
def test_every_200_leaves_after_the_fdatasync_of_its_packet(tmp_path):
    trace = tmp_path / "trace.txt"
    receiver = ReceiverProcess(
        tmp_path,
        tmp_path / "landing",
        prefix=[
            "strace",
            "-f",
            "-qq",
            "-s",
            "48",
            "-o",
            str(trace),
            "-e",
            "trace=write,writev,sendto,sendmsg,fdatasync,fsync",
        ],
    ).start()
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for p in list(schedule(meter_ids(5), date(2025, 2, 8)))[:5]:  # one at a time
        conn.request("POST", "/meter", json.dumps(p), headers)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()
    conn.close()
    assert receiver.stop() == 0

    events = []  # in order: W (packet written), F (fdatasync returned 0), R (200 sent)
    for line in trace.read_text().splitlines():
        if "fdatasync" in line and line.rstrip().endswith("= 0"):
            events.append("F")
        elif '\\"timestamp\\"' in line:
            events.append("W")
        elif "HTTP/1.1 200" in line:
            events.append("R")
    answers = [i for i, e in enumerate(events) if e == "R"]
    assert len(answers) >= 5 + 1  # the five packets, plus /health at start
    posts = answers[-5:]
    for before, answer in zip([0, *posts], posts, strict=False):
        window = "".join(events[before:answer])
        assert "W" in window and "F" in window[window.index("W") :], events
