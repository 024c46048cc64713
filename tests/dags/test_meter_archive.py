"""meter_archive and meter_restore run through Airflow (dag.test) with a fixed logical date.

The run's logical date is its "now": 2025-03-10 12:00 UTC with the default retention of 30
days puts the cutoff at 2025-02-08 00:00 UTC, so of the readings from 30 January to 9 February
the days up to 7 February are archived and 8-9 February stay.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2025, 2, 8, tzinfo=UTC)
FIRST, LAST = datetime(2025, 1, 30, tzinfo=UTC), datetime(2025, 2, 10, tzinfo=UTC)
COLUMNS = "meter_id, interval_start, kwh, quality, batch_id, ingested_at"
SOURCES = ("A", "B", "C")


def _readings(source: str) -> list[tuple]:
    ingested = datetime(2025, 2, 11, 6, 0, 0, 123456, tzinfo=UTC)
    rows, t, i = [], FIRST, 0
    while t < LAST:
        rows.append((f"SMR89134{source}", t, Decimal("0.125") * (i % 9), "A", 7, ingested))
        t, i = t + timedelta(minutes=30), i + 1
    return rows


def _table(db, source: str) -> list[tuple]:
    return db.execute(
        f"SELECT {COLUMNS} FROM meter.readings_{source.lower()} ORDER BY meter_id, interval_start"
    ).fetchall()


def _keys(s3_client, bucket: str, prefix: str = "") -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def _states(run) -> dict[str, str]:
    return {
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state
        for ti in run.get_task_instances()
    }


def _returned(run, task_id: str, map_index: int = -1):
    """What a task of the run returned (its XCom), as Airflow stored it."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(
        run_id=run.run_id,
        dag_ids=run.dag_id,
        task_ids=task_id,
        map_indexes=map_index,
        key="return_value",
    )
    with create_session() as session:
        return XComModel.deserialize_value(session.scalars(query).one())


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags")).get_dag(dag_id)


@pytest.fixture
def loaded(db, bucket, landing):
    """Readings of A, B and C from 30 January to 9 February, and two processed landing files:
    one from January (old), one from March (recent)."""
    data = {s: _readings(s) for s in SOURCES}
    for source, rows in data.items():
        table = f"meter.readings_{source.lower()}"
        db.execute("SELECT meter.ensure_partitions(%s::regclass, %s, %s)", (table, FIRST, LAST))
        with db.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)", rows
            )
    processed = landing / "processed" / "spreadsheets"
    processed.mkdir(parents=True)
    for name, when in (("jan.csv", datetime(2025, 1, 15, 9, tzinfo=UTC)), ("mar.csv", NOW)):
        (processed / name).write_text(f"meter_id,timestamp,reading_kWh\n# {name}\n")
        os.utime(processed / name, (when.timestamp(), when.timestamp()))
    return data


def test_archive_run_moves_old_days_to_s3_and_restore_run_brings_them_back(
    airflow_db, db, loaded, s3_client, bucket, landing
):
    before = {s: _table(db, s) for s in SOURCES}
    jan = (landing / "processed" / "spreadsheets" / "jan.csv").read_bytes()

    run = _dag("meter_archive").test(logical_date=NOW)

    assert set(_states(run).values()) == {"success"}
    for source, rows in loaded.items():
        assert _table(db, source) == [r for r in rows if r[1] >= CUTOFF]
        manifests = [
            k for k in _keys(s3_client, bucket, f"archive/source={source}/") if "manifest" in k
        ]
        assert len(manifests) == 9  # 30 January .. 7 February
        feb7 = f"archive/source={source}/year=2025/month=02/day=07/manifest.json"
        manifest = json.loads(s3_client.get_object(Bucket=bucket, Key=feb7)["Body"].read())
        feb7_rows = [r for r in rows if r[1].date() == CUTOFF.date() - timedelta(days=1)]
        assert (manifest["rows"], Decimal(manifest["kwh_sum"])) == (
            len(feb7_rows),
            sum(r[2] for r in feb7_rows),
        )
    raw = "raw/spreadsheets/2025/01/15/jan.csv.gz"
    assert gzip.decompress(s3_client.get_object(Bucket=bucket, Key=raw)["Body"].read()) == jan
    assert sorted(p.name for p in (landing / "processed" / "spreadsheets").iterdir()) == ["mar.csv"]
    assert db.execute(
        "SELECT count(*) FROM audit.archive_run WHERE run_id = %s AND step = 'delete' "
        "AND status = 'ok'",
        (run.run_id,),
    ).fetchone() == (3 * 9,)

    restore = _dag("meter_restore").test(
        run_conf={"sources": ["A", "B", "C"], "from_day": "2025-01-01", "to_day": "2025-02-28"}
    )

    assert set(_states(restore).values()) == {"success"}
    assert {s: _table(db, s) for s in SOURCES} == before
    restored = _returned(restore, "restore_source", map_index=0)
    assert (restored["source"], restored["rows_restored"]) == ("A", 9 * 48)


def test_dry_run_of_the_archive_changes_nothing_and_reports_what_it_would_move(
    airflow_db, db, loaded, s3_client, bucket, landing
):
    before = {s: _table(db, s) for s in SOURCES}

    run = _dag("meter_archive").test(logical_date=NOW, run_conf={"dry_run": True})

    assert set(_states(run).values()) == {"success"}
    assert {s: _table(db, s) for s in SOURCES} == before
    assert _keys(s3_client, bucket) == []
    assert (landing / "processed" / "spreadsheets" / "jan.csv").exists()
    assert db.execute("SELECT count(*) FROM audit.archive_run").fetchone() == (0,)
    report = _returned(run, "report")
    a = next(s for s in report["sources"] if s["source"] == "A")
    assert (a["days"], a["rows"], a["first_day"], a["last_day"]) == (
        9,
        9 * 48,
        "2025-01-30",
        "2025-02-07",
    )
    assert a["partitions_to_drop"] == ["meter.readings_a_202501"]
    assert report["landing"]["files"] == 1
