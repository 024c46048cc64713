"""NEM12 at distributor scale (issue 27): a realistic file loaded end to end, against a raw COPY
of the same clean rows and against nemreader's parse alone, in the same run.

The file: N NMIs (real 10-character ids) × 30 days; a third with an export channel (E1 + B1),
a tenth at 5 minutes and a fifth at 15 minutes (the rest 30), 2% of days quality V with two
400 records, as .csv and as .zip. Cases:

- ``load_file`` of the .csv and of the .zip, each in its own process (its peak RSS printed);
  readings are the file's 30-minute readings (what is staged);
- raw ``COPY`` of the same clean rows (exported from the load) into an unindexed table of
  staging.reading's shape: the ratio load/COPY;
- ``nemreader.read_nem_file`` (parse only, no database) on a tenth of the file with the same
  mix (the whole file would need ~8 GB of Python objects): the ratio load/nemreader, both in
  the file's 30-minute readings per second;
- the same file with every row rejected (the feed's meter id pattern matches none): its rate
  against the staged load;
- with MF_BENCH_NEM12_GB=1: a ~1 GB file as .csv and .zip, peak RSS of each load (issue 27
  asks < 1 GiB); MF_BENCH_NEM12_GB=only runs just that (give it its own MF_BENCH_DB to run it
  beside another bench).

Size: MF_BENCH_NEM12_NMIS (default 10,000), MF_BENCH_NEM12_DAYS (default 30). Targets (issue
27): load ≥ 0.6× COPY, ≥ 1.2× nemreader; all rejected ≥ 0.5× staged; 1 GB peak RSS < 1 GiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg

from bench.common import Result, fresh_bench_db, work_dir

MIB_PER_NMI_DAY = 200 / 10_000 / 30  # this file's mix: 200 MiB for 10,000 NMIs x 30 days
POOL = 256  # distinct day-lines of values per interval length (3-decimal random values)

CHILD = """
import json, sys, dataclasses
from pathlib import Path
from meterflow import feeds, ingest
feed = feeds.load_feeds()["nem12"]
if sys.argv[3] == "reject":
    feed = dataclasses.replace(feed, meter_id_pattern="^SMR")
r = ingest.load_file(Path(sys.argv[1]), feed, landing_dir=Path(sys.argv[2]), upload_raw=False,
                     move=False)
assert r.balanced, r
# VmHWM: this process's own peak RSS (ru_maxrss would include the parent's at fork time)
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
print(json.dumps({"batch": r.batch_id, "read": r.rows_read, "staged": r.rows_staged,
                  "rejected": r.rows_rejected, "peak_kib": peak}))
"""


def _show(result: Result) -> Result:
    """Print a case as soon as it is measured (the whole table comes at the end)."""
    print(f"   {result.case}: {result.rate:,.0f} readings/s; {result.note}", flush=True)
    return result


def write_file(path: Path, nmis: int, days: int, seed: int = 27) -> int:
    """A NEM12 file of ``nmis`` NMIs × ``days`` days; returns its number of 30-minute readings."""
    rng = np.random.default_rng(seed)
    pools = {
        iv: [
            ",".join(f"{v:.3f}" for v in rng.random(1440 // iv) * (2.0 * iv / 30))
            for _ in range(POOL)
        ]
        for iv in (5, 15, 30)
    }
    first = date.today() - timedelta(days=days + 2)
    dates = [f"{first + timedelta(days=d):%Y%m%d}" for d in range(days)]
    readings = 0
    with path.open("w", newline="\n") as out:
        out.write(f"100,NEM12,{first:%Y%m%d}0000,MDPBENCH,RETAILER\n")
        for i in range(nmis):
            nmi = f"4{i:09d}"
            interval = 5 if i % 10 == 0 else 15 if i % 10 in (1, 2) else 30
            suffixes = ("E1", "B1") if i % 3 == 0 else ("E1",)
            picks = rng.integers(0, POOL, size=(len(suffixes), days))
            variable = rng.random((len(suffixes), days)) < 0.02
            per_day = 1440 // interval
            lines = []
            for s, suffix in enumerate(suffixes):
                config = "".join(suffixes)
                lines.append(f"200,{nmi},{config},{s + 1},{suffix},N{s + 1},M{i},kWh,{interval},\n")
                for d, day in enumerate(dates):
                    flag = "V" if variable[s, d] else "A"
                    values = pools[interval][picks[s, d]]
                    lines.append(f"300,{day},{values},{flag},,,{day}235959,\n")
                    if flag == "V":
                        half = per_day // 2
                        lines.append(f"400,1,{half},A,,\n400,{half + 1},{per_day},E52,,\n")
                    readings += 48
            out.write("".join(lines))
        out.write("900\n")
    return readings


def zipped(path: Path) -> Path:
    target = path.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, path.name)
    return target


def load_child(path: Path, landing: Path, mode: str = "stage") -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(landing), mode],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    seconds = time.perf_counter() - t0
    return json.loads(out.stdout.strip().splitlines()[-1]), seconds


def reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE staging.reading, audit.rejected_row, audit.load_batch CASCADE")


def copy_baseline(url: str, batch_id: int, tmp: Path) -> tuple[int, float]:
    """Export the batch's clean rows; COPY them into an unindexed table of staging's shape."""
    clean = tmp / "clean.csv"
    export = "COPY (SELECT * FROM staging.reading WHERE batch_id = %s) TO STDOUT (FORMAT csv)"
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        clean.open("wb") as fh,
        cur.copy(export, (batch_id,)) as copy,
    ):
        for block in copy:
            fh.write(block)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS public.bench_copy")
        cur.execute("CREATE TABLE public.bench_copy (LIKE staging.reading)")
        conn.commit()
        rows = 0
        t0 = time.perf_counter()
        with (
            cur.copy("COPY public.bench_copy FROM STDIN (FORMAT csv)") as copy,
            clean.open("rb") as fh,
        ):
            while block := fh.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - t0
        cur.execute("SELECT count(*) FROM public.bench_copy")
        rows = cur.fetchone()[0]
        cur.execute("DROP TABLE public.bench_copy")
        conn.commit()
    clean.unlink()
    return rows, seconds


def nemreader_parse(path: Path) -> float:
    import logging

    from nemreader import read_nem_file

    logging.getLogger("nemreader").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    read_nem_file(str(path))
    return time.perf_counter() - t0


def run() -> list[Result]:
    url = fresh_bench_db()
    gigabyte = os.environ.get("MF_BENCH_NEM12_GB", "0")
    tmp = work_dir("nem12_gb" if gigabyte == "only" else "nem12")
    landing = tmp / "landing"
    landing.mkdir(exist_ok=True)
    nmis = int(os.environ.get("MF_BENCH_NEM12_NMIS", 10_000))
    days = int(os.environ.get("MF_BENCH_NEM12_DAYS", 30))
    if gigabyte == "only":  # the memory case alone (its own MF_BENCH_DB to run beside the rest)
        return _one_gigabyte(url, tmp, landing, days, MIB_PER_NMI_DAY * days)
    results: list[Result] = []

    csv_path = tmp / "distributor.csv"
    readings = write_file(csv_path, nmis, days)
    zip_path = zipped(csv_path)
    mib = csv_path.stat().st_size / 2**20
    print(f"   {nmis:,} NMIs x {days} days: {readings:,} readings, {mib:,.0f} MiB", flush=True)

    reset(url)
    got, seconds = load_child(csv_path, landing)
    assert got["staged"] == readings, got
    load_rate = readings / seconds
    copied, copy_seconds = copy_baseline(url, got["batch"], tmp)
    results.append(_show(Result("nem12", "raw COPY of the same clean rows", copied, copy_seconds)))
    results.append(
        Result(
            "nem12",
            "load_file .csv (own process)",
            readings,
            seconds,
            "raw COPY",
            load_rate / (copied / copy_seconds),
            note=f"peak RSS {got['peak_kib'] / 1024:,.0f} MiB, file {mib:,.0f} MiB",
        )
    )

    sample = tmp / "sample.csv"
    sample_readings = write_file(sample, max(1, nmis // 10), days)
    parse_seconds = nemreader_parse(sample)
    sample.unlink()
    case = "read_nem_file, parse only (1/10 sample)"
    results.append(_show(Result("nemreader", case, sample_readings, parse_seconds)))
    results[-2].note += f"; {load_rate / (sample_readings / parse_seconds):.2f}x nemreader parse"
    _show(results[-2])

    reset(url)
    got, seconds = load_child(zip_path, landing)
    assert got["staged"] == readings, got
    results.append(
        Result(
            "nem12",
            "load_file .zip (own process)",
            readings,
            seconds,
            "load .csv",
            (readings / seconds) / load_rate,
            note=f"peak RSS {got['peak_kib'] / 1024:,.0f} MiB",
        )
    )
    _show(results[-1])

    reset(url)
    got, seconds = load_child(csv_path, landing, "reject")
    assert got["rejected"] == readings, got
    results.append(
        Result(
            "nem12",
            "load_file .csv, every row rejected",
            readings,
            seconds,
            "load .csv",
            (readings / seconds) / load_rate,
            note=f"peak RSS {got['peak_kib'] / 1024:,.0f} MiB",
        )
    )
    _show(results[-1])
    reset(url)
    csv_path.unlink()
    zip_path.unlink()

    if gigabyte == "1":
        results += _one_gigabyte(url, tmp, landing, days, mib / nmis)
    return results


def _one_gigabyte(url: str, tmp: Path, landing: Path, days: int, mib_per_nmi: float) -> list:
    big = tmp / "one_gb.csv"
    nmis = int(1024 / mib_per_nmi)
    readings = write_file(big, nmis, days, seed=1)
    out = []
    print(f"   1 GB case: {nmis:,} NMIs x {days} days, {readings:,} readings", flush=True)
    for path in (big, zipped(big)):
        reset(url)
        got, seconds = load_child(path, landing)
        assert got["staged"] == readings, got
        size = big.stat().st_size / 2**20
        out.append(
            Result(
                "nem12",
                f"1 GB file {path.suffix} (own process)",
                readings,
                seconds,
                note=f"peak RSS {got['peak_kib'] / 1024:,.0f} MiB for a {size:,.0f} MiB NEM12 "
                "file (target < 1024 MiB)",
            )
        )
        _show(out[-1])
        path.unlink() if path.suffix == ".zip" else None
    reset(url)
    big.unlink()
    return out
