"""Test fixtures: the real local stack (PostgreSQL, S3, SMTP), isolated per test session.

Each pytest session gets its own warehouse database (``mf_test_<id>``, migrated from
include/sql/migrations and dropped at the end), its own S3 bucket and its own Airflow metadata
database ``airflow_test`` (migrated once, shared, guarded by a file lock), so tests never touch
the demo's data and two sessions can run at once. The stack itself is started by
``make test`` (scripts/services.sh start); a session without it fails with that message.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO / "dags")]

# Everything below runs before Airflow is imported anywhere in the session.
os.environ.setdefault("MF_VAR", str(REPO / "var"))
# The local cluster asks for its generated password (scram): libpq reads it from the password
# file scripts/services.sh writes (scripts/env.sh sets the same default).
os.environ.setdefault("PGPASSFILE", str(Path(os.environ["MF_VAR"]) / "pg" / "pgpass"))
_PG_PORT = os.environ.setdefault("MF_PG_PORT", "5433")
_ADMIN_URL = f"postgresql://postgres@127.0.0.1:{_PG_PORT}/postgres"
_SESSION = uuid.uuid4().hex[:8]
TEST_DB = f"mf_test_{_SESSION}"
TEST_BUCKET = f"mf-test-{_SESSION}"
TEST_WAREHOUSE_URL = f"postgresql://meterflow@127.0.0.1:{_PG_PORT}/{TEST_DB}"
os.environ["MF_WAREHOUSE_URL"] = TEST_WAREHOUSE_URL
os.environ["AIRFLOW_CONN_METER_WAREHOUSE"] = TEST_WAREHOUSE_URL
os.environ["MF_S3_BUCKET"] = TEST_BUCKET
# Test files are written whole before they are listed: a short settle time keeps the check
# (tests/integration/test_hostile_input.py) without adding 10 s to every DAG run.
os.environ.setdefault("MF_SETTLE_SECONDS", "1")
os.environ.setdefault("AIRFLOW_HOME", str(REPO / "var" / "airflow"))
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
    f"postgresql+psycopg2://airflow@127.0.0.1:{_PG_PORT}/airflow_test"
)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"


def _admin():
    import psycopg

    try:
        return psycopg.connect(_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.exit(
            f"the local PostgreSQL on 127.0.0.1:{_PG_PORT} is not answering ({exc}); "
            "run `make services` (make test does it for you)",
            returncode=3,
        )


@pytest.fixture(scope="session")
def warehouse_url() -> str:
    """A fresh, migrated warehouse database for this session; dropped afterwards."""
    from meterflow import warehouse

    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{TEST_DB}" OWNER meterflow')
    try:
        import psycopg

        with psycopg.connect(TEST_WAREHOUSE_URL, autocommit=True) as conn:
            warehouse.migrate(conn)
        yield TEST_WAREHOUSE_URL
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')


@pytest.fixture
def db(warehouse_url):
    """An autocommit connection to an emptied warehouse (all data tables truncated)."""
    import psycopg

    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        truncate_all(conn)
        yield conn


def truncate_all(conn) -> None:
    """Empty every table of staging, meter, audit and mart, and drop reading partitions."""
    rows = conn.execute(
        """SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('staging', 'meter', 'audit', 'mart')
              AND c.relkind IN ('r', 'p') AND NOT c.relispartition"""
    ).fetchall()
    if rows:
        conn.execute("TRUNCATE " + ", ".join(r[0] for r in rows) + " RESTART IDENTITY CASCADE")
    parts = conn.execute(
        """SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE i.inhparent IN ('meter.readings_a'::regclass, 'meter.readings_b'::regclass,
                                  'meter.readings_c'::regclass)"""
    ).fetchall()
    for (p,) in parts:
        conn.execute(f"DROP TABLE {p}")


@pytest.fixture(scope="session")
def s3_client():
    import boto3

    port = os.environ.get("MF_S3_PORT", "5001")
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="eu-west-2",
        aws_access_key_id="meterflow-local",
        aws_secret_access_key="meterflow-local",
    )
    try:
        client.create_bucket(
            Bucket=TEST_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
    except Exception as exc:
        pytest.exit(f"the local S3 endpoint on port {port} is not answering: {exc}", returncode=3)
    yield client


@pytest.fixture
def bucket(s3_client) -> str:
    """This session's bucket, emptied before the test."""
    resp = s3_client.list_objects_v2(Bucket=TEST_BUCKET)
    for obj in resp.get("Contents", []):
        s3_client.delete_object(Bucket=TEST_BUCKET, Key=obj["Key"])
    return TEST_BUCKET


@pytest.fixture
def landing(tmp_path, monkeypatch) -> Path:
    """An empty landing folder for this test, set as MF_LANDING_DIR and fs_default's path."""
    import json

    path = tmp_path / "landing"
    path.mkdir()
    monkeypatch.setenv("MF_LANDING_DIR", str(path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_FS_DEFAULT", json.dumps({"conn_type": "fs", "extra": {"path": str(path)}})
    )
    return path


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The Airflow metadata DB for dag.test(): ``airflow_test``, migrated once (file-locked)."""
    lock_path = REPO / "var" / "airflow_test.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with _admin() as admin:
            if not admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = 'airflow_test'"
            ).fetchone():
                admin.execute("CREATE DATABASE airflow_test OWNER airflow")
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=os.environ.copy(),
            capture_output=True,
        )


@pytest.fixture
def outbox() -> Path:
    """The local SMTP server's Maildir (var/outbox)."""
    return Path(os.environ.get("MF_OUTBOX_DIR", REPO / "var" / "outbox"))
