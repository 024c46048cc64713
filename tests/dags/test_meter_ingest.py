"""meter_ingest run through Airflow (dag.test) over a landing folder with good and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]


def _latest_staging_event() -> dict | None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        event = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "meter_staging")
            .order_by(AssetEvent.id.desc())
            .limit(1)
        ).first()
        return dict(event.extra) if event else None


def test_ingest_run_loads_good_files_fails_only_the_corrupt_one_and_announces_batches(
    airflow_db, db, landing, bucket
):
    from airflow.dag_processing.dagbag import DagBag

    sheets = landing / "spreadsheets"
    sheets.mkdir()
    (sheets / "a.csv").write_text(
        "meter_id,timestamp,reading_kWh\nSMR89134A,15/01/2025 00:00,0.25\n"
        "SMR89134A,15/01/2025 00:30,oops\n"
    )
    (sheets / "c.csv").write_text(
        "meter_id,timestamp,reading_kWh\nSMR89134C,15/01/2025 00:00,1.25\n"
    )
    (sheets / "corrupt.xlsx").write_bytes(b"PK\x03\x04 definitely not a workbook")
    (landing / "processed" / "spreadsheets").mkdir(parents=True)
    (landing / "processed" / "spreadsheets" / "old.csv").write_text("already handled\n")

    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("meter_ingest")
    run = dag.test()

    states = {
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state
        for ti in run.get_task_instances()
    }
    assert sorted(s for k, s in states.items() if k.startswith("load[")) == [
        "failed",
        "success",
        "success",
    ]
    assert states["announce"] == "success"
    batches = db.execute(
        "SELECT file_name, status, rows_read, rows_staged, rows_rejected FROM audit.load_batch "
        "ORDER BY file_name"
    ).fetchall()
    assert batches == [
        ("a.csv", "staged", 2, 1, 1),
        ("c.csv", "staged", 1, 1, 0),
        ("corrupt.xlsx", "failed", 0, 0, 0),
    ]
    assert (landing / "failed" / "spreadsheets" / "corrupt.xlsx.error.txt").exists()
    assert sorted(p.name for p in (landing / "processed" / "spreadsheets").iterdir()) == [
        "a.csv",
        "c.csv",
        "old.csv",
    ]
    staged_ids = [
        b
        for (b,) in db.execute(
            "SELECT batch_id FROM audit.load_batch WHERE status = 'staged' ORDER BY 1"
        )
    ]
    assert _latest_staging_event() == {"batch_ids": staged_ids}
