"""Simulated meters: ``python -m meterflow.stream.simulate --meters N --rate R``.

Each meter sends one packet per half hour, one minute after the interval ends — the packet at
00:31 reports 00:00–00:30 — so a simulated day is 48 intervals per meter, and the packet that
reports a day's last interval (23:30–24:00) is sent at 00:01 the next day. The schedule runs
compressed in time: packets leave in time order at ``--rate`` packets per second in total
(0 = as fast as the receiver answers). By default the days simulated are the ones just before
today (UTC), so no reading lies in the future. Readings follow a household profile (morning and
evening peaks) scaled per meter, and are the same for the same ``--seed``.

Requests that fail with 503 or a connection error are retried like a meter would; a 4xx is
counted as failed. Prints a summary: packets acknowledged, failed, rate, p50/p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from urllib.parse import urlsplit

from meterflow import config
from meterflow.models import INTERVAL_MINUTES

SLOTS_PER_DAY = 24 * 60 // INTERVAL_MINUTES
SEND_DELAY = timedelta(minutes=1)  # a packet leaves one minute after its interval ends


def meter_ids(n: int, numeric: bool = False) -> list[str | int]:
    """N distinct meter ids: SMR89134A, SMR89135B, SMR89136C, … (or 900000000, 900000001, …)."""
    if numeric:
        return [900_000_000 + i for i in range(n)]
    return [f"SMR{(89134 + i) % 100_000:05d}{'ABC'[i % 3]}" for i in range(n)]


def _profile(hour: float) -> float:
    """Mean household kWh in a half hour at local hour ``hour``: a morning and an evening peak."""
    morning = 0.35 * math.exp(-((hour - 7.5) ** 2) / 2)
    evening = 0.75 * math.exp(-((hour - 18.5) ** 2) / 3)
    return 0.15 + morning + evening


def schedule(meters: list[str | int], start: date, days: int = 1, seed: int = 7) -> Iterator[dict]:
    """The packets of ``meters`` for ``days`` days from ``start`` (UTC), in sending order."""
    rng = random.Random(seed)
    scale = {m: rng.uniform(0.5, 1.8) for m in meters}
    t0 = datetime(start.year, start.month, start.day, tzinfo=UTC)
    for slot in range(days * SLOTS_PER_DAY):
        interval_start = t0 + timedelta(minutes=INTERVAL_MINUTES * slot)
        sent = interval_start + timedelta(minutes=INTERVAL_MINUTES) + SEND_DELAY
        stamp = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
        mean = _profile(interval_start.hour + interval_start.minute / 60)
        for m in meters:
            kwh = max(0.0, rng.gauss(mean * scale[m], 0.05))
            yield {"id": m, "timestamp": stamp, "reading_kWh": round(kwh, 3)}


def chunks(packets: Iterable[dict], size: int) -> Iterator[list[dict]]:
    it = iter(packets)
    while chunk := list(islice(it, size)):
        yield chunk


@dataclass
class Stats:
    acked: int = 0  # packets answered 2xx
    failed: int = 0  # packets refused with a 4xx, or still failing after the retries
    retries: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # per request, seconds
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def summary(self) -> str:
        return (
            f"acknowledged {self.acked:,} packets in {self.seconds:.1f} s "
            f"({self.rate:,.0f} packets/s), failed {self.failed:,}, retries {self.retries:,}; "
            f"request latency p50 {self.percentile(50) * 1000:.1f} ms, "
            f"p99 {self.percentile(99) * 1000:.1f} ms"
        )


class _Connection:
    """One keep-alive HTTP/1.1 connection; a lean client, so that the load generator costs
    less CPU than the receiver it measures (aiohttp's client costs about as much again)."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = parts.scheme == "https"
        self.head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        """The status of one POST; raises OSError (or IncompleteReadError) on a broken line."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl or None
            )
        assert self.reader is not None
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lines = head.lower().split(b"\r\n")
        length = next((int(h[15:]) for h in lines if h.startswith(b"content-length:")), 0)
        await self.reader.readexactly(length)
        if b"connection: close" in lines:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def send(
    packets: Iterable[dict],
    url: str,
    token: str,
    *,
    rate: float = 0.0,
    concurrency: int = 16,
    batch: int = 1,
    retries: int = 5,
    on_ack: Callable[[list[dict]], None] | None = None,
) -> Stats:
    """POST the packets (``batch`` per request, ``concurrency`` connections in flight)."""
    stats = Stats()
    requests = chunks(packets, batch)
    start = time.perf_counter()
    sent_packets = 0

    async def worker() -> None:
        nonlocal sent_packets
        conn = _Connection(url, token)
        for chunk in requests:  # one shared iterator: each chunk goes to one worker
            if rate > 0:
                due = start + sent_packets / rate
                sent_packets += len(chunk)
                if (delay := due - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
            body = json.dumps(chunk if batch > 1 else chunk[0]).encode()
            for attempt in range(retries + 1):
                t = time.perf_counter()
                try:
                    status = await asyncio.wait_for(conn.post(body), 30)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    conn.close()
                    status = 0
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    stats.latencies.append(time.perf_counter() - t)
                    stats.acked += len(chunk)
                    if on_ack:
                        on_ack(chunk)
                    break
                if 400 <= status < 500 or attempt == retries:
                    stats.failed += len(chunk)
                    break
                stats.retries += 1
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.seconds = time.perf_counter() - start
    return stats


def run(coro):
    """asyncio.run on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def default_url() -> str:
    return f"http://{config.get('stream_host')}:{config.get('stream_port')}/meter"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meterflow.stream.simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--meters", type=int, default=21, help="number of meters (21)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="packets per second in total; 0 = flat out"
    )
    parser.add_argument("--days", type=int, default=1, help="days of readings per meter (1)")
    parser.add_argument("--start", type=date.fromisoformat, help="first day (UTC), YYYY-MM-DD")
    parser.add_argument("--url", default=None, help="receiver URL (from MF_STREAM_HOST/PORT)")
    parser.add_argument("--token", default=None, help="bearer token (MF_STREAM_TOKEN or file)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    parser.add_argument("--batch", type=int, default=1, help="packets per request (1)")
    parser.add_argument("--numeric-ids", action="store_true", help="ids like 999999999")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from meterflow.stream.app import resolve_token

    start = args.start or (datetime.now(UTC).date() - timedelta(days=args.days))
    meters = meter_ids(args.meters, numeric=args.numeric_ids)
    total = args.meters * args.days * SLOTS_PER_DAY
    url = args.url or default_url()
    print(
        f"sending {total:,} packets ({args.meters} meters × {args.days} day(s) × "
        f"{SLOTS_PER_DAY} from {start}) to {url} at "
        + (f"{args.rate:,.0f} packets/s" if args.rate else "full speed"),
        flush=True,
    )
    stats = run(
        send(
            schedule(meters, start, args.days, args.seed),
            url,
            args.token or resolve_token(create=False),
            rate=args.rate,
            concurrency=args.concurrency,
            batch=args.batch,
        )
    )
    print(stats.summary())
    return 0 if stats.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
