"""DAG integrity: every DAG in dags/ imports cleanly, follows the conventions, and parsing it
opens no database or network connection."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"
KNOWN_IDS = {
    "meter_ingest",
    "meter_quality",
    "meter_segregate",
    "meter_peak_report",
    "meter_consumption_report",
    "meter_deliver",
    "meter_archive",
    "meter_restore",
    "meter_tranche",
    "meter_vee",  # issue 23: validation, estimation and editing
}
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_there_are_dags_to_check():
    assert DAG_FILES, "dags/ holds no DAG file"


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_each_file_defines_one_dag_named_after_it(dagbag, path):
    ids = [d.dag_id for d in dagbag.dags.values() if Path(d.fileloc).name == path.name]
    assert ids == [path.stem]
    assert path.stem in KNOWN_IDS, f"{path.stem} is not one of the DAG ids of ARCHITECTURE.md §1"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_each_dag_has_owner_tags_docs_and_retries(dagbag, path):
    dag = dagbag.dags[path.stem]
    assert dag.doc_md and len(dag.doc_md.strip()) > 200, "doc_md should tell a person what it does"
    assert "meterflow" in dag.tags and len(dag.tags) >= 2
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.owner == "metering", f"{task.task_id} owner {task.owner!r}"
        if task.task_type != "FileSensor":  # the sensor soft-fails; its next run retries
            assert task.retries >= 1, f"{task.task_id} has no retries"
            # Airflow 3.3 reads this as a multiplier of retry_delay: True (1) never backs off
            assert task.retry_exponential_backoff > 1, f"{task.task_id} retries do not back off"
        assert task.on_failure_callback, f"{task.task_id} has no failure callback"


def test_parsing_dags_opens_no_database_or_network_connection(tmp_path):
    """Parse dags/ in a fresh interpreter under strace: any connect() to a TCP or unix socket
    (PostgreSQL through libpq, S3, SMTP, the Airflow API) is recorded by the kernel-level
    trace, even one that a DAG file would catch and hide. The metadata DB and connections point
    at a closed port, so the parse also proves it does not need the services."""
    strace = shutil.which("strace")
    assert strace, "strace is needed for this test (make test installs it)"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(REPO / "plugins")!r}, {str(DAGS_DIR)!r}]
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS_DIR)!r})
        print("DAGS", sorted(bag.dag_ids))
        print("ERRORS", bag.import_errors)
        sys.exit(0 if not bag.import_errors and bag.dag_ids else 1)
        """
    )
    dead = "postgresql+psycopg2://nobody@127.0.0.1:9/none"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dead,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_METER_WAREHOUSE": "postgresql://nobody@127.0.0.1:9/none",
        "AIRFLOW_CONN_AWS_DEFAULT": '{"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9"}}',
    }
    trace = tmp_path / "connect.trace"
    proc = subprocess.run(
        [
            strace,
            "-f",
            "-qq",
            "-e",
            "trace=connect",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            script,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    connects = [
        line
        for line in trace.read_text().splitlines()
        if "connect(" in line and "/var/run/nscd/socket" not in line
    ]
    assert connects == [], "parsing dags/ tried to connect:\n" + "\n".join(connects)
