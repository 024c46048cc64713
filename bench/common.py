"""Shared benchmark plumbing: a fresh, migrated bench database and a result table.

Every benchmark measures meterflow against a baseline run in the same process on the same
data (raw COPY, pandas.to_sql, row-by-row INSERT, a plain SQL scan) and reports the ratio;
nothing here asserts a time. Results are printed and appended to var/bench/results.jsonl;
docs/benchmarks.md records them by hand with the machine and date.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from meterflow import REPO_DIR, warehouse

BENCH_DB = os.environ.get("MF_BENCH_DB", "mf_bench")


def admin_url() -> str:
    port = os.environ.get("MF_PG_PORT", "5433")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def bench_url() -> str:
    port = os.environ.get("MF_PG_PORT", "5433")
    return f"postgresql://meterflow@127.0.0.1:{port}/{BENCH_DB}"


def fresh_bench_db() -> str:
    """Drop and recreate the bench database, migrated; point the warehouse connection at it."""
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{BENCH_DB}" OWNER meterflow')
    url = bench_url()
    with psycopg.connect(url, autocommit=True) as conn:
        warehouse.migrate(conn)
    os.environ["AIRFLOW_CONN_METER_WAREHOUSE"] = url
    os.environ["MF_WAREHOUSE_URL"] = url
    return url


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


@dataclass
class Result:
    bench: str
    case: str
    rows: int
    seconds: float
    baseline: str | None = None
    ratio: float | None = None  # rows/s of this case / rows/s of the baseline
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def report(results: list[Result]) -> None:
    out_dir = REPO_DIR / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    machine = f"{platform.node()} {os.cpu_count()} cores {platform.python_version()}"
    with (out_dir / "results.jsonl").open("a") as fh:
        for r in results:
            fh.write(
                json.dumps({**asdict(r), "rate": r.rate, "at": stamp, "machine": machine}) + "\n"
            )
    print(f"\n{'bench':<12} {'case':<38} {'rows':>11} {'s':>8} {'rows/s':>11}  vs baseline")
    for r in results:
        ratio = f"{r.ratio:6.2f}x {r.baseline}" if r.ratio is not None else ""
        print(
            f"{r.bench:<12} {r.case:<38} {r.rows:>11,} {r.seconds:>8.2f} {r.rate:>11,.0f}  {ratio}"
        )
        if r.note:
            print(f"{'':<12} {r.note}")


def work_dir(name: str) -> Path:
    path = REPO_DIR / "var" / "bench" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def copy_staging_csv(url: str, path: Path) -> float:
    """The raw-COPY baseline: seconds to COPY a clean CSV (staging.reading's own columns)
    into staging.reading, committed."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        with (
            cur.copy("COPY staging.reading FROM STDIN (FORMAT csv)") as copy,
            path.open("rb") as fh,
        ):
            while block := fh.read(1 << 20):
                copy.write(block)
        conn.commit()
        return time.perf_counter() - t0
