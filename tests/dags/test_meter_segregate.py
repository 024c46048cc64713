"""meter_segregate run through Airflow (dag.test) over validated batches in the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 15, tzinfo=UTC)


def _validated_batch(db, meters: list[str]) -> int:
    """A validated batch with one actual reading at T0 per meter."""
    (batch_id,) = db.execute(
        """INSERT INTO audit.load_batch (feed, file_name, file_path, sha256, size_bytes, status,
                                         rows_read, rows_staged)
           VALUES ('spreadsheets', 'f.csv', '/landing/f.csv',
                   lpad(md5(random()::text), 64, '0'), 0, 'validated', %s, %s)
           RETURNING batch_id""",
        (len(meters), len(meters)),
    ).fetchone()
    for row_no, meter in enumerate(meters, start=2):
        db.execute(
            "INSERT INTO staging.reading VALUES (%s, %s, %s, %s, %s, 1.5, 'A', now())",
            (batch_id, row_no, meter, meter[-1], T0),
        )
    return batch_id


def _readings_events() -> dict[str, list[dict]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name.in_(["readings_a", "readings_b", "readings_c"]))
            .order_by(AssetEvent.id)
        ).all()
    out: dict[str, list[dict]] = {}
    for name, extra in rows:
        out.setdefault(name, []).append(dict(extra))
    return out


def _states(run) -> dict[str, str]:
    return {
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state
        for ti in run.get_task_instances()
    }


def test_segregate_run_promotes_validated_batches_fails_only_the_unreconciled_one_and_announces(
    airflow_db, db
):
    from airflow.dag_processing.dagbag import DagBag

    ab = _validated_batch(db, ["SMR89134A", "SMR89140B"])
    broken = _validated_batch(db, ["SMR89135C", "SMR89136C"])
    db.execute(
        "UPDATE audit.load_batch SET rows_staged = 3, rows_read = 3 WHERE batch_id = %s", (broken,)
    )
    a_only = _validated_batch(db, ["SMR89137A"])
    before = _readings_events()
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("meter_segregate")

    run = dag.test()

    states = _states(run)
    assert sorted(s for k, s in states.items() if k.startswith("promote[")) == [
        "failed",
        "success",
        "success",
    ]
    assert states["announce_a"] == "success"
    assert states["announce_b"] == "success"
    assert states["announce_c"] == "skipped"  # only the broken batch had C readings
    assert states["purge_staging"] == "success"
    assert db.execute(
        "SELECT batch_id, status, rows_promoted FROM audit.load_batch ORDER BY 1"
    ).fetchall() == [(ab, "promoted", 2), (broken, "validated", None), (a_only, "promoted", 1)]
    assert db.execute("SELECT meter_id FROM meter.readings_a ORDER BY 1").fetchall() == [
        ("SMR89134A",),
        ("SMR89137A",),
    ]
    assert db.execute("SELECT meter_id FROM meter.readings_b").fetchall() == [("SMR89140B",)]
    assert db.execute("SELECT count(*) FROM meter.readings_c").fetchone() == (0,)
    events = _readings_events()
    assert events["readings_a"][len(before.get("readings_a", [])) :] == [
        {"batch_ids": [ab, a_only]}
    ]
    assert events["readings_b"][len(before.get("readings_b", [])) :] == [{"batch_ids": [ab]}]
    assert len(events.get("readings_c", [])) == len(before.get("readings_c", []))

    # The cause fixed (rows_staged matches staging again), a second run promotes the rest
    # and changes nothing that was already promoted.
    db.execute(
        "UPDATE audit.load_batch SET rows_staged = 2, rows_read = 2 WHERE batch_id = %s", (broken,)
    )
    a_before = db.execute("SELECT * FROM meter.readings_a ORDER BY 1").fetchall()

    again = dag.test()

    states = _states(again)
    assert [s for k, s in states.items() if k.startswith("promote[")] == ["success"]
    assert (states["announce_a"], states["announce_b"], states["announce_c"]) == (
        "skipped",
        "skipped",
        "success",
    )
    assert db.execute("SELECT * FROM meter.readings_a ORDER BY 1").fetchall() == a_before
    assert db.execute("SELECT meter_id FROM meter.readings_c ORDER BY 1").fetchall() == [
        ("SMR89135C",),
        ("SMR89136C",),
    ]
    assert _readings_events()["readings_c"][len(before.get("readings_c", [])) :] == [
        {"batch_ids": [broken]}
    ]

    # Nothing left to promote: a third run succeeds, changes nothing and announces nothing.
    tables = [db.execute(f"SELECT * FROM meter.readings_{s} ORDER BY 1").fetchall() for s in "abc"]
    events = _readings_events()

    idle = dag.test()

    assert idle.state == "success"
    states = _states(idle)
    assert {states[f"announce_{s}"] for s in "abc"} == {"skipped"}
    assert [
        db.execute(f"SELECT * FROM meter.readings_{s} ORDER BY 1").fetchall() for s in "abc"
    ] == tables
    assert _readings_events() == events
