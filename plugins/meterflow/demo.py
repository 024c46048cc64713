"""`make demo`: the whole pipeline on generated sample data, through the running Airflow.

Puts sample files into the landing folder, unpauses the meterflow DAGs, triggers
`meter_ingest` (the Asset chain starts the rest), waits — bounded — until every run it caused
has finished, triggers the monthly `meter_archive` by hand, waits again, and prints a summary:
each DAG run and its state, rows per table, and where every output is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from meterflow import config

CHAIN_TRIGGERS = ["meter_ingest"]  # the Assets start quality → segregate → report → deliver
AFTER_CHAIN = ["meter_archive"]  # monthly in production; the demo shows it once by hand
DEMO_TEAM = "data-team@localhost"  # the demo's alert address (the local SMTP server keeps it)


class Airflow:
    """A small client of the Airflow 3 REST API (simple auth manager login)."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base.rstrip("/")
        token = httpx.post(
            f"{self.base}/auth/token", json={"username": user, "password": password}, timeout=30
        )
        token.raise_for_status()
        self.http = httpx.Client(
            base_url=f"{self.base}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )

    def dags(self) -> dict[str, dict]:
        resp = self.http.get("/dags", params={"tags": "meterflow", "limit": 100})
        resp.raise_for_status()
        return {d["dag_id"]: d for d in resp.json()["dags"]}

    def import_errors(self) -> list[dict]:
        resp = self.http.get("/importErrors")
        resp.raise_for_status()
        return resp.json().get("import_errors", [])

    def ensure_variable(self, key: str, value: str) -> str:
        """The Variable's value; set to ``value`` first when it does not exist."""
        resp = self.http.get(f"/variables/{key}")
        if resp.status_code == 404:
            self.http.post("/variables", json={"key": key, "value": value}).raise_for_status()
            return value
        resp.raise_for_status()
        return resp.json()["value"]

    def unpause(self, dag_id: str) -> None:
        self.http.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        resp = self.http.post(
            f"/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": conf or {}, "note": "make demo"},
        )
        resp.raise_for_status()
        return resp.json()["dag_run_id"]

    def runs_since(self, dag_ids: list[str], since: datetime) -> list[dict]:
        runs = []
        for dag_id in dag_ids:
            resp = self.http.get(
                f"/dags/{dag_id}/dagRuns",
                params={"run_after_gte": since.isoformat(), "limit": 100},
            )
            resp.raise_for_status()
            runs.extend(resp.json()["dag_runs"])
        return sorted(runs, key=lambda r: r.get("run_after") or "")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        resp = self.http.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500}
        )
        resp.raise_for_status()
        return resp.json()["task_instances"]

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        return [
            f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]
            for t in self.task_instances(dag_id, run_id)
            if t["state"] in ("failed", "upstream_failed")
        ]

    def only_waiting_for_files(self, run: dict) -> bool:
        """An ingest run whose sensor waits (deferred) for files that have not landed: idle."""
        if run["dag_id"] != "meter_ingest":
            return False
        states = {
            t["task_id"]: t["state"] for t in self.task_instances(run["dag_id"], run["dag_run_id"])
        }
        # deferred: the sensor looked and found no file (it succeeds at once when one is there)
        return states.get("wait_for_files") in ("deferred", "up_for_reschedule") and all(
            states.get(t) in (None, "none", "scheduled") for t in ("list_files", "load", "announce")
        )


def _login() -> tuple[str, str]:
    path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    users = json.loads(path.read_text())
    user = next(iter(users))
    return user, users[user]


def _wait(af: Airflow, dag_ids: list[str], since: datetime, timeout: float, quiet: float) -> list:
    """Until every run since `since` is finished and none has appeared for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    settled_at = None
    seen = -1
    while time.monotonic() < deadline:
        runs = af.runs_since(dag_ids, since)
        # A meter_ingest run whose sensor waits (deferred) for the next files is not "work":
        # the scheduled run that unpausing starts may have taken the demo's files already.
        active = [
            r
            for r in runs
            if r["state"] in ("queued", "running") and not af.only_waiting_for_files(r)
        ]
        if active or len(runs) != seen:
            settled_at = None
            seen = len(runs)
            states = ", ".join(f"{r['dag_id']}={r['state']}" for r in runs[-6:])
            print(f"  … {len(runs)} run(s), {len(active)} active: {states}", flush=True)
        elif settled_at is None:
            settled_at = time.monotonic()
        elif time.monotonic() - settled_at >= quiet:
            return runs
        time.sleep(3)
    raise TimeoutError(f"runs still active after {timeout:.0f} s; see the UI")


def _place_samples(landing: Path) -> list[Path]:
    from meterflow import sample

    placed = []
    with tempfile.TemporaryDirectory() as tmp:
        sample.generate(Path(tmp))
        for src in sorted(Path(tmp).rglob("*")):
            if src.is_file() and src.parent != Path(tmp):
                feed_dir = landing / src.parent.relative_to(tmp)
                feed_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, feed_dir / src.name)
                placed.append(feed_dir / src.name)
    return placed


def _table_counts() -> list[tuple[str, int]]:
    from psycopg import sql

    from meterflow import warehouse

    with warehouse.connect() as conn:
        tables = conn.execute(
            """SELECT schemaname, tablename FROM pg_tables
                WHERE schemaname IN ('staging', 'meter', 'audit', 'mart')
                  AND tablename NOT LIKE 'readings\\__\\_______' ORDER BY 1, 2"""
        ).fetchall()
        count = sql.SQL("SELECT count(*) FROM {}")
        return [
            (
                f"{schema}.{table}",
                conn.execute(count.format(sql.Identifier(schema, table))).fetchone()[0],
            )
            for schema, table in tables
        ]


def _batch_states() -> list[tuple]:
    from meterflow import warehouse

    with warehouse.connect() as conn:
        return conn.execute(
            """SELECT status, count(*), sum(rows_read), sum(rows_staged), sum(rows_rejected),
                      sum(rows_duplicate) FROM audit.load_batch GROUP BY status ORDER BY 1"""
        ).fetchall()


def _reject_reasons() -> list[tuple]:
    from meterflow import warehouse

    with warehouse.connect() as conn:
        return conn.execute(
            "SELECT reason, count(*) FROM audit.rejected_row GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()


def _channels() -> tuple[list[tuple], list[tuple]]:
    """Readings per channel (meters, readings, sum of values) and the marts' import and export
    per source: what the channels came to."""
    from meterflow import warehouse

    with warehouse.connect() as conn:
        readings = conn.execute(
            """SELECT channel, meter.channel_kind(channel), count(DISTINCT meter_id), count(*),
                      sum(kwh)
                 FROM (SELECT meter_id, channel, kwh FROM meter.readings_a UNION ALL
                       SELECT meter_id, channel, kwh FROM meter.readings_b UNION ALL
                       SELECT meter_id, channel, kwh FROM meter.readings_c) r
                GROUP BY 1, 2 ORDER BY 1"""
        ).fetchall()
        marts = conn.execute(
            """SELECT source, sum(kwh), sum(export_kwh), max(export_meters)
                 FROM mart.source_consumption_daily GROUP BY 1 ORDER BY 1"""
        ).fetchall()
    return readings, marts


def _s3_summary() -> dict[str, int]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=config.get("aws_conn_id"))
    counts: dict[str, int] = {}
    for key in hook.list_keys(bucket_name=config.get("s3_bucket")) or []:
        top = key.split("/", 1)[0] + "/"
        counts[top] = counts.get(top, 0) + 1
    return counts


def summary(runs: list[dict], af: Airflow) -> bool:
    ok = True
    print("\n=== meterflow demo: DAG runs")
    for r in runs:
        if r["state"] in ("queued", "running"):
            print(f"  {r['dag_id']:<26} {r['state']:<8} {r['dag_run_id']} (waiting for files)")
            continue
        failed = af.failed_tasks(r["dag_id"], r["dag_run_id"])
        note = f"  (failed tasks: {', '.join(failed)})" if failed else ""
        print(f"  {r['dag_id']:<26} {r['state']:<8} {r['dag_run_id']}{note}")
        ok &= r["state"] == "success"
    print("\n=== batches (audit.load_batch)")
    print(f"  {'status':<10} {'files':>6} {'read':>10} {'staged':>10} {'rejected':>9} {'dups':>6}")
    for status, files, read, staged, rejected, dups in _batch_states():
        print(f"  {status:<10} {files:>6} {read:>10,} {staged:>10,} {rejected:>9,} {dups:>6,}")
    reasons = _reject_reasons()
    if reasons:
        print("  rejected rows by reason: " + ", ".join(f"{r} {n:,}" for r, n in reasons))
    readings, marts = _channels()
    print("\n=== channels (meter.readings_a|b|c; kWh, or kVArh for non-energy)")
    for channel, kind, meters, n, total in readings:
        print(f"  {channel:<3} {kind:<10} {meters:>4} meters {n:>10,} readings {total:>12,.1f}")
    print("  marts (mart.source_consumption_daily): import kWh, export kWh beside it")
    for source, imported, exported, exporting in marts:
        out = f"{exported:,.1f} kWh from {exporting} meters" if exported is not None else "none"
        print(f"    source {source}: import {imported:,.1f} kWh, export {out}")
    print("\n=== rows per table")
    for name, n in _table_counts():
        print(f"  {name:<34} {n:>12,}")
    var = Path(config.get("var"))
    landing = Path(config.get("landing_dir"))
    print("\n=== outputs")
    print(f"  landing folder            {landing}")
    for sub in ("processed", "failed"):
        files = [p for p in (landing / sub).rglob("*") if p.is_file()]
        print(f"    {sub + '/':<22}  {len(files)} file(s)")
    docs = Path(config.get("data_docs_dir"))
    index = next(iter(sorted(docs.rglob("index.html"))), None) if docs.exists() else None
    print(f"  Data Docs                 {index or '(none yet)'}")
    reports = Path(config.get("reports_dir"))
    pngs = sorted(reports.rglob("*.png")) if reports.exists() else []
    print(f"  charts                    {len(pngs)} PNG under {reports}")
    for p in pngs[:8]:
        print(f"    {p}")
    outbox = Path(config.get("outbox_dir")) / "new"
    mails = sorted(outbox.iterdir()) if outbox.exists() else []
    print(f"  emails                    {len(mails)} in {outbox}")
    bucket = config.get("s3_bucket")
    for prefix, n in sorted(_s3_summary().items()):
        print(f"  s3://{bucket}/{prefix:<16} {n} object(s)")
    print(f"  logs                      {var / 'log'} and {var / 'airflow' / 'logs'}")
    print(f"\n  UI: {af.base}  (login printed by `make up`; `make down` stops everything)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait, at most")
    args = parser.parse_args(argv)
    base = os.environ.get("AIRFLOW__API__BASE_URL", "http://localhost:8080")
    af = Airflow(base, *_login())
    since = datetime.now(UTC)

    deadline = time.monotonic() + 180
    while True:
        dags = af.dags()
        if "meter_ingest" in dags or time.monotonic() > deadline:
            break
        time.sleep(2)
    errors = af.import_errors()
    if errors:
        for e in errors:
            print(f"import error in {e.get('filename')}: {e.get('stack_trace', '')[-500:]}")
        return 1
    print(f"meterflow DAGs in Airflow: {', '.join(sorted(dags))}")

    if not os.environ.get("MF_ALERT_EMAIL"):  # alerts to a local team address, never the sponsor
        team = af.ensure_variable("mf_alert_email", DEMO_TEAM)
        print(f"alerts go to {team} (Variable mf_alert_email); deliverables to the sponsor")
    landing = Path(config.get("landing_dir"))
    placed = _place_samples(landing)
    print(f"placed {len(placed)} sample file(s) in {landing}")
    for dag_id in dags:
        af.unpause(dag_id)
    for dag_id in CHAIN_TRIGGERS:
        if dag_id in dags:
            print(f"triggered {dag_id}: {af.trigger(dag_id)}")
    _wait(af, list(dags), since, args.timeout, quiet=25)
    for dag_id in AFTER_CHAIN:
        if dag_id in dags:
            print(f"triggered {dag_id}: {af.trigger(dag_id)}")
    runs = _wait(af, list(dags), since, args.timeout, quiet=10)
    ok = summary(runs, af)
    if not ok:
        print("\nsome runs did not succeed: see the UI and var/airflow/logs", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
