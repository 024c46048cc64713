"""The quality gate end to end through Airflow: meter_quality then meter_segregate, as the
Assets chain them. A batch GX rejects never reaches meter.readings_a/b/c."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.test_quality import channel_rows, day_rows, stage

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]


def test_a_batch_rejected_by_quality_is_never_promoted_while_its_neighbour_is(
    airflow_db, db, bucket, tmp_path, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MF_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("MF_DATA_DOCS_DIR", str(tmp_path / "var" / "data_docs"))
    tag = uuid.uuid4().hex[:8]
    clean = stage(db, day_rows("SMR89136A"), file_name=f"clean-{tag}.csv")
    bad_rows = [  # one reading far above max_kwh: a critical expectation fails
        (m, s, t, 99.0 if i == 7 else kwh, q)
        for i, (m, s, t, kwh, q) in enumerate(day_rows("SMR89137B"))
    ]
    bad = stage(db, bad_rows, file_name=f"bad-{tag}.csv")

    bag = DagBag(dag_folder=str(REPO / "dags"))
    bag.get_dag("meter_quality").test()
    bag.get_dag("meter_segregate").test()

    statuses = dict(
        db.execute(
            "SELECT batch_id, status FROM audit.load_batch WHERE batch_id IN (%s, %s)",
            (clean, bad),
        ).fetchall()
    )
    assert statuses == {clean: "promoted", bad: "rejected"}
    per_table = {
        table: db.execute(f"SELECT count(*) FROM meter.{table}").fetchone()[0]
        for table in ("readings_a", "readings_b", "readings_c")
    }
    assert per_table == {"readings_a": 48, "readings_b": 0, "readings_c": 0}


def test_a_solar_meters_import_export_and_reactive_channels_pass_the_gate_and_are_promoted(
    airflow_db, db, bucket, tmp_path, monkeypatch
):
    """E1, B1 and Q1 of one meter on the same half hours, B1 equal to E1 (as NEM12 files often
    have): three series, not duplicates; all of them reach meter.readings_a."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MF_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("MF_DATA_DOCS_DIR", str(tmp_path / "var" / "data_docs"))
    rows = [
        *channel_rows("SMR89138A", "E1", 0.5),
        *channel_rows("SMR89138A", "B1", 0.5),
        *channel_rows("SMR89138A", "Q1", 1.25),
    ]
    solar = stage(db, rows, file_name=f"solar-{uuid.uuid4().hex[:8]}.csv")

    bag = DagBag(dag_folder=str(REPO / "dags"))
    bag.get_dag("meter_quality").test()
    bag.get_dag("meter_segregate").test()

    assert db.execute(
        "SELECT status FROM audit.load_batch WHERE batch_id = %s", (solar,)
    ).fetchone() == ("promoted",)
    assert db.execute(
        "SELECT channel, count(*), sum(kwh) FROM meter.readings_a GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("B1", 48, 24), ("E1", 48, 24), ("Q1", 48, 60)]
