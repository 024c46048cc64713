"""meter_quality run through Airflow (dag.test) over one clean and one bad staged batch."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.test_quality import day_rows, stage

pytestmark = [pytest.mark.integration, pytest.mark.dag]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def gx_home(tmp_path, monkeypatch) -> Path:
    """GX file context and Data Docs of this test under tmp_path (not the demo's var/)."""
    monkeypatch.setenv("MF_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("MF_DATA_DOCS_DIR", str(tmp_path / "var" / "data_docs"))
    return tmp_path / "var"


def _latest_validated_event() -> dict | None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        event = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "meter_validated")
            .order_by(AssetEvent.id.desc())
            .limit(1)
        ).first()
        return dict(event.extra) if event else None


def _mails_mentioning(outbox: Path, text: str) -> list[str]:
    """Subject and decoded text of every mail in the Maildir that mentions ``text``."""
    import email
    from email import policy

    found = []
    for path in sorted((outbox / "new").glob("*")) if (outbox / "new").is_dir() else []:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        parts = [p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"]
        mail = "\n".join([str(msg["subject"]), *parts])
        if text in mail:
            found.append(mail)
    return found


def test_quality_run_validates_the_clean_batch_rejects_the_bad_one_and_announces_only_the_clean(
    airflow_db, db, bucket, s3_client, gx_home, outbox, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MF_ALERT_EMAIL", "data-team@example.net")
    tag = uuid.uuid4().hex[:8]
    clean = stage(db, day_rows("SMR89134A"), file_name=f"clean-{tag}.csv")
    bad_rows = [
        (m, s, t, 99.0 if i == 5 else kwh, q)
        for i, (m, s, t, kwh, q) in enumerate(day_rows("SMR89135B"))
    ]
    bad = stage(db, bad_rows, file_name=f"bad-{tag}.csv")

    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("meter_quality")
    run = dag.test()

    states = {
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state
        for ti in run.get_task_instances()
    }
    assert states == {
        "check_schema": "success",
        "pending_batches": "success",
        "validate[0]": "success",
        "validate[1]": "success",
        "announce": "success",
    }
    statuses = dict(db.execute("SELECT batch_id, status FROM audit.load_batch").fetchall())
    assert statuses == {clean: "validated", bad: "rejected"}
    assert _latest_validated_event() == {"batch_ids": [clean]}

    results = dict(db.execute("SELECT batch_id, docs_path FROM audit.quality_result").fetchall())
    assert set(results) == {clean, bad}
    keys = {
        o["Key"]
        for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="data-docs/").get("Contents", [])
    }
    docs = gx_home / "data_docs"
    index = (docs / "index.html").read_text()
    assert "data-docs/index.html" in keys
    for batch_id, page in results.items():
        assert (docs / page).is_file() and f"data-docs/{page}" in keys
        assert Path(page).name in index, f"index.html does not link batch {batch_id}'s page"

    (alert,) = _mails_mentioning(outbox, f"bad-{tag}.csv")
    assert f"batch {bad} (bad-{tag}.csv) rejected by the quality gate" in alert
    assert "kwh_range" in alert
    assert _mails_mentioning(outbox, f"clean-{tag}.csv") == []


def test_a_manual_run_with_batch_id_re_validates_only_that_batch(airflow_db, db, bucket, gx_home):
    from airflow.dag_processing.dagbag import DagBag

    first = stage(db, day_rows("SMR89134A"), file_name="first.csv")
    other = stage(db, day_rows("SMR89136C"), file_name="other.csv")
    db.execute("UPDATE audit.load_batch SET status = 'validated' WHERE batch_id = %s", (first,))

    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("meter_quality")
    dag.test(run_conf={"batch_id": first})

    runs = db.execute(
        "SELECT batch_id, verdict FROM audit.quality_result ORDER BY batch_id"
    ).fetchall()
    assert runs == [(first, "validated")]
    assert db.execute(
        "SELECT status FROM audit.load_batch WHERE batch_id = %s", (other,)
    ).fetchone() == ("staged",)
    assert _latest_validated_event() == {"batch_ids": [first]}
