"""Stream receiver: sustained packets/s and p99 latency on loopback, with fsync on.

A real receiver process (``python -m meterflow.stream``) on a free loopback port, with its open
and landing folders under var/bench/stream/, is loaded for a bounded time
(MF_BENCH_STREAM_SECONDS, default 20 s per case) by the simulator's client:
MF_BENCH_STREAM_CONCURRENCY (default 64) keep-alive connections, one packet per request as a
meter sends it, no pacing.
Cases, each on a fresh receiver:

- baseline: an fsync per request (``--max-group 1``), what a receiver without batching does;
- group commit (the shipped default): requests that queue while an fsync runs share the next;
- no fsync (``--unsafe-no-fsync``, MF_BENCH_STREAM_UNSAFE=1, off by default): the upper bound
  that the disk's flush costs; never a way to run it.

Every 2xx counts only after the receiver's fdatasync, so packets/s is acknowledged, durable
packets. Latency is per request, from the client's send to the end of the answer. Target
(issue 9): >= 2,000 packets/s on a 2-core machine with group commit.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date

from bench.common import Result, work_dir
from meterflow import REPO_DIR
from meterflow.stream.simulate import meter_ids, schedule, send
from meterflow.stream.simulate import run as run_loop

TOKEN = "bench-token-stream"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    finally:
        conn.close()


def _metrics(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def _start(root, flags: list[str]) -> tuple[subprocess.Popen, int]:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_DIR / "plugins"), os.environ.get("PYTHONPATH", "")]
        ),
        "MF_VAR": str(root / "var"),
        "MF_LANDING_DIR": str(root / "landing"),
        "MF_STREAM_OPEN_DIR": str(root / "open"),
        "MF_STREAM_TOKEN": TOKEN,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meterflow.stream",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *flags,
        ],
        env=env,
        stdout=(root / "receiver.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((root / "receiver.log").read_text()[-2000:])
        try:
            if _health(port) == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise TimeoutError("the receiver did not become healthy")


def _until(packets: Iterator[dict], seconds: float) -> Iterator[dict]:
    """The packets, until ``seconds`` have passed (checked every packet: cheap)."""
    end = time.perf_counter() + seconds
    for p in packets:
        if time.perf_counter() >= end:
            return
        yield p


def _case(name: str, flags: list[str], seconds: float, concurrency: int) -> tuple[Result, dict]:
    root = work_dir("stream") / re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    proc, port = _start(root, flags)
    try:
        packets = schedule(meter_ids(2_000), date(2025, 2, 1), days=30)  # more than enough
        url = f"http://127.0.0.1:{port}/meter"
        stats = run_loop(send(_until(packets, seconds), url, TOKEN, concurrency=concurrency))
        m = _metrics(port)
    finally:
        proc.terminate()
        proc.wait(60)
    stored = sum(
        len(p.read_bytes().splitlines()) for p in (root / "landing" / "stream").glob("*.jsonl")
    )
    if stats.failed or stored != stats.acked:
        raise RuntimeError(f"{name}: {stats.failed} failed, {stats.acked} acked, {stored} stored")
    note = (
        f"p50 {stats.percentile(50) * 1000:.1f} ms, p99 {stats.percentile(99) * 1000:.1f} ms; "
        f"{m['commits']:,} fsyncs ({m['accepted_requests'] / max(1, m['commits']):.1f} "
        f"requests each, largest {m['largest_group']}), {concurrency} connections"
    )
    print(f"  {name}: {stats.summary()}", flush=True)
    return Result("stream", name, stats.acked, stats.seconds, note=note), m


def run() -> list[Result]:
    seconds = float(os.environ.get("MF_BENCH_STREAM_SECONDS", "20"))
    concurrency = int(os.environ.get("MF_BENCH_STREAM_CONCURRENCY", "64"))
    base, _ = _case("fsync per request (baseline)", ["--max-group", "1"], seconds, concurrency)
    cases = [("group commit, fsync on", [])]
    if os.environ.get("MF_BENCH_STREAM_UNSAFE") == "1":
        cases.append(("no fsync (unsafe upper bound)", ["--unsafe-no-fsync"]))
    results = [base]
    for name, flags in cases:
        r, _ = _case(name, flags, seconds, concurrency)
        r.baseline, r.ratio = base.case, r.rate / base.rate
        results.append(r)
    return results
