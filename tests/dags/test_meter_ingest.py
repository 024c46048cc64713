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


def test_a_run_with_eight_broken_files_sends_one_alert_naming_each_and_the_next_run_none(
    airflow_db, db, landing, bucket, outbox, monkeypatch
):
    import uuid

    from airflow.dag_processing.dagbag import DagBag

    from tests.integration.test_alerts import settle

    monkeypatch.setenv("MF_ALERT_EMAIL", "data-team@example.net")
    tag = uuid.uuid4().hex[:8]
    sheets = landing / "spreadsheets"
    sheets.mkdir()
    broken = [f"broken-{tag}-{n}.xlsx" for n in range(8)]
    for name in broken:
        (sheets / name).write_bytes(b"PK\x03\x04 not a workbook " + name.encode())
    (sheets / f"good-{tag}.csv").write_text(
        "meter_id,timestamp,reading_kWh\nSMR89134A,15/01/2025 00:00,0.25\n"
    )
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("meter_ingest")

    dag.test()
    (sheets / f"later-{tag}.csv").write_text(
        "meter_id,timestamp,reading_kWh\nSMR89134A,15/01/2025 00:30,0.5\n"
    )
    dag.test(run_conf={"path": f"spreadsheets/later-{tag}.csv"})  # the next run: nothing new

    [alert] = settle(outbox, tag, 1)
    assert alert["To"] == "data-team@example.net"
    assert alert["Subject"] == "[meterflow] meter_ingest: 8 files failed"
    body = alert.get_body(("html",)).get_content()
    for name in broken:
        assert body.count(f"spreadsheets/{name} moved to failed/") == 1
    assert not list(sheets.iterdir())  # nothing stuck in landing
