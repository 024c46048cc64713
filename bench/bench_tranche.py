"""Tranche selection speed: the next tranche of whole eligible sites from a large registry.

A registry of N meters (MF_BENCH_TRANCHE_METERS, default 1,000,000) grouped at random into
sites of about 2 meters (N/2 site numbers; 1 to ~10 meters a site). Cases:

- registering them, before V024 (baseline, rolled back): one INSERT that leaves them
  ``loaded``, judged afterwards by an UPDATE of every meter (what the first tranche after a
  bulk registration used to do), history rows included;
- registering them through the registry feed's upsert (``registry.UPSERT_SQL``, V024): each
  meter judged in the INSERT itself (``meter.initial_status``), one row version and one history
  row per meter;

then 1% of the meters put on an exclusion list (the site rule excludes their sites, ~3%),
eligible-since spread over 100,000 minutes, and:

- baseline: one plain UPDATE marking the T oldest eligible meters selected (the same writes,
  history trigger included, without sites; rolled back);
- ``lifecycle.select_tranche`` of T meters (MF_BENCH_TRANCHE_SIZE, default 100,000): judge
  meters still loaded (10 set back by hand: the history trigger's first call in the session
  is then a small one, as when a tranche follows a few new meters), group eligible meters by
  site, oldest site first, whole sites up to T, mark them selected (one history row each),
  list them in meter.tranche_meter, one transaction;
- ``lifecycle.outbound_text``: the tranche's outbound file built from the warehouse.

Target (issue 24): a tranche of 100,000 from a registry of 1,000,000 in ≤ 30 s, the first
tranche after a bulk registration included.
"""

from __future__ import annotations

import os
import random
import time
from datetime import date

import psycopg

from bench.common import Result, fresh_bench_db

INSERT_LOADED = """
INSERT INTO meter.meter (meter_id, source, site, region)
SELECT * FROM unnest(%(meter_id)s::text[], %(source)s::text[], %(site)s::text[],
                     %(region)s::text[])"""
SPREAD = """
UPDATE meter.meter
   SET status_since = timestamptz '2026-01-01' + (hashtext(site) %% 100000) * interval '1 minute'"""
EXCLUDE = """
INSERT INTO meter.exclusion (list_name, meter_id, code)
SELECT 'noncomm', meter_id, 'NONCOMM' FROM meter.meter WHERE hashtext(meter_id) %% 100 = 0"""
RELOAD = """
UPDATE meter.meter SET status = 'loaded'
 WHERE meter_id IN (SELECT meter_id FROM meter.meter WHERE status = 'eligible'
                     ORDER BY meter_id DESC LIMIT 10)"""
BASELINE = """
UPDATE meter.meter SET status = 'selected', status_since = clock_timestamp()
 WHERE meter_id IN (SELECT meter_id FROM meter.meter WHERE status = 'eligible'
                     ORDER BY status_since, meter_id LIMIT %(size)s)"""


def registry_columns(meters: int) -> dict[str, list]:
    """The registry feed's columns (registry.upsert) for ``meters`` meters at ~meters/2 sites."""
    rng = random.Random(24)
    sites = max(1, meters // 2)
    return {
        "meter_id": [f"SMR{i:07d}A" for i in range(1, meters + 1)],
        "source": ["A"] * meters,
        "site": [f"SITE{rng.randrange(sites)}" for _ in range(meters)],
        "region": ["north"] * meters,
        "owner": [None] * meters,
        "capacity_kwh": [None] * meters,
    }


def _timed(conn: psycopg.Connection, sql: str, params: dict | None = None) -> float:
    t0 = time.perf_counter()
    conn.execute(sql, params or {})  # {} and not None: %% in the SQL is then an escape
    return time.perf_counter() - t0


def run() -> list[Result]:
    from meterflow import lifecycle, registry, warehouse

    meters = int(os.environ.get("MF_BENCH_TRANCHE_METERS", 1_000_000))
    size = int(os.environ.get("MF_BENCH_TRANCHE_SIZE", 100_000))
    url = fresh_bench_db()
    columns = registry_columns(meters)
    results = []
    with psycopg.connect(url) as conn:  # before V024: inserted loaded, judged by an UPDATE
        conn.execute("SET jit = off")
        before_s = _timed(conn, INSERT_LOADED, columns)
        judged = conn.execute("SELECT count(*) FROM meter.meter WHERE status = 'eligible'")
        assert judged.fetchone()[0] == meters
        conn.rollback()
    results.append(
        Result(
            "tranche",
            "register: INSERT loaded + judge UPDATE",
            meters,
            before_s,
            note=(
                "before V024: the first tranche after a bulk registration paid the judging UPDATE"
            ),
        )
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM meter.meter, meter.status_history")
        conn.execute("SET jit = off")
        upsert_s = _timed(conn, registry.UPSERT_SQL.read_text(), columns)
        loaded = conn.execute("SELECT count(*) FROM meter.meter WHERE status <> 'eligible'")
        results.append(
            Result(
                "tranche",
                "register: registry upsert, judged in it",
                meters,
                upsert_s,
                "INSERT+judge",
                before_s / upsert_s,
                note=f"V024; meters not eligible after it: {loaded.fetchone()[0]:,}",
            )
        )
        for label, sql in (
            ("exclude 1% (site rule trigger)", EXCLUDE),
            ("spread eligible-since", SPREAD),
        ):
            results.append(Result("tranche", f"setup: {label}", meters, _timed(conn, sql)))
        conn.execute("VACUUM ANALYZE meter.meter")
        # a few meters set back to loaded: select_tranche judges them first, so the history
        # trigger's first call in its session is a small one before the tranche's 100,000
        conn.execute(RELOAD)
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
                f"{excluded:,} excluded; {tranche['judged']:,} judged first; "
                f"target ≤ 30 s: {select_s:.1f} s"
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
