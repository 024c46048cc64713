"""Tranche selection speed: the next tranche of whole eligible sites from a large registry.

A registry of N meters (MF_BENCH_TRANCHE_METERS, default 1,000,000) grouped at random into
sites of about 2 meters (N/2 site numbers; 1 to ~10 meters a site), registered in one
INSERT (the status trigger writes 1M history rows), judged (loaded → eligible), then 1% of
the meters put on an exclusion list (the site rule excludes their sites, ~2%). Cases:

- baseline: one plain UPDATE marking the T oldest eligible meters selected (the same writes,
  history trigger included, without sites; rolled back);
- ``lifecycle.select_tranche`` of T meters (MF_BENCH_TRANCHE_SIZE, default 100,000): judge
  new meters, group eligible meters by site, oldest site first, whole sites up to T, mark
  them selected (one history row each), list them in meter.tranche_meter, one transaction;
- ``lifecycle.outbound_text``: the tranche's outbound file built from the warehouse.

Target (issue 24): a tranche of 100,000 from a registry of 1,000,000 in ≤ 30 s.
"""

from __future__ import annotations

import os
import time
from datetime import date

import psycopg

from bench.common import Result, fresh_bench_db

REGISTER = """
INSERT INTO meter.meter (meter_id, source, site, region)
SELECT 'SMR' || lpad(i::text, 7, '0') || 'A', 'A',
       'SITE' || (hashtext(i::text) & %(sites)s), 'north'
  FROM generate_series(1, %(n)s) i"""
SPREAD = """
UPDATE meter.meter
   SET status_since = timestamptz '2026-01-01' + (hashtext(site) %% 100000) * interval '1 minute'"""
EXCLUDE = """
INSERT INTO meter.exclusion (list_name, meter_id, code)
SELECT 'noncomm', meter_id, 'NONCOMM' FROM meter.meter WHERE hashtext(meter_id) %% 100 = 0"""
BASELINE = """
UPDATE meter.meter SET status = 'selected', status_since = clock_timestamp()
 WHERE meter_id IN (SELECT meter_id FROM meter.meter WHERE status = 'eligible'
                     ORDER BY status_since, meter_id LIMIT %(size)s)"""


def run() -> list[Result]:
    from meterflow import lifecycle, warehouse

    meters = int(os.environ.get("MF_BENCH_TRANCHE_METERS", 1_000_000))
    size = int(os.environ.get("MF_BENCH_TRANCHE_SIZE", 100_000))
    url = fresh_bench_db()
    results = []
    with psycopg.connect(url, autocommit=True) as conn:
        for label, sql in (
            ("register meters (history trigger)", REGISTER),
            ("judge loaded → eligible", "SELECT meter.judge_loaded()"),
            ("spread eligible-since", SPREAD),
            ("exclude 1% (site rule trigger)", EXCLUDE),
        ):
            t0 = time.perf_counter()
            conn.execute(sql, {"n": meters, "sites": (1 << (meters // 2).bit_length()) - 1})
            results.append(Result("tranche", f"setup: {label}", meters, time.perf_counter() - t0))
        conn.execute("VACUUM ANALYZE meter.meter")
        excluded = conn.execute(
            "SELECT count(*) FROM meter.meter WHERE status = 'excluded'"
        ).fetchone()[0]
    with psycopg.connect(url) as conn:  # the baseline's writes are rolled back
        conn.execute("SET jit = off")
        t0 = time.perf_counter()
        conn.execute(BASELINE, {"size": size})
        base_s = time.perf_counter() - t0
        conn.rollback()
    results.append(Result("tranche", "baseline: UPDATE oldest meters by id", size, base_s))

    # the first warehouse.connect() imports Airflow's connection machinery (seconds): a task
    # has it loaded already, so it is paid here, outside the measurement
    warehouse.conninfo()
    t0 = time.perf_counter()
    tranche = lifecycle.select_tranche(size, date(2026, 12, 1), system="BENCH")
    select_s = time.perf_counter() - t0
    results.append(
        Result(
            "tranche",
            f"select_tranche {size:,} of {meters:,}",
            tranche["meters"],
            select_s,
            "baseline",
            (tranche["meters"] / select_s) / (size / base_s),
            note=(
                f"{tranche['meters']:,} meters at {tranche['sites']:,} sites; "
                f"{excluded:,} excluded; target ≤ 30 s: {select_s:.1f} s"
            ),
        )
    )
    t0 = time.perf_counter()
    name, text = lifecycle.outbound_text(tranche["tranche_id"])
    results.append(
        Result(
            "tranche",
            "outbound_text (file content)",
            tranche["meters"],
            time.perf_counter() - t0,
            note=f"{name}: {len(text):,} bytes",
        )
    )
    return results
