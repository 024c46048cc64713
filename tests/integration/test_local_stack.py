"""The local stand-ins answer through the same Airflow connections the DAGs use: S3 through
S3Hook and aws_default's endpoint_url, SMTP through SmtpHook and smtp_default. A fresh clone in
a folder the postgres OS user cannot traverse starts its stack with `make services`, its
PostgreSQL asks for the generated password (scram, never trust), a cluster made with trust is
moved to it, and what the stack stores (rows, objects) survives a restart."""

from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.test_alerts import wait_for_mail

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_an_object_put_through_s3hook_reads_back_from_the_local_endpoint(bucket):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id="aws_default")
    key = f"stack-check/{uuid.uuid4().hex}.txt"
    hook.load_string("half-hourly kWh", key=key, bucket_name=bucket)
    assert hook.read_key(key, bucket_name=bucket) == "half-hourly kWh"
    assert hook.conn.meta.endpoint_url.startswith("http://127.0.0.1:")


def test_an_email_sent_through_smtphook_arrives_in_the_outbox(outbox):
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    subject = f"meterflow stack check {uuid.uuid4().hex[:8]}"
    with SmtpHook(smtp_conn_id="smtp_default") as hook:
        hook.send_email_smtp(to="bob@btl.com", subject=subject, html_content="<p>readings</p>")
    msg = wait_for_mail(outbox, subject)
    assert msg["To"] == "bob@btl.com"


# --- A fresh clone where the postgres OS user cannot go, restarted ------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Clone:
    """A git clone of this repository's committed HEAD in a new mode-0700 folder (as root's home
    is), with its own stack on free ports; its environment is the clone's own scripts/env.sh."""

    start_output = ""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mf-clone-"))
        self.home = self.folder / "meterflow"
        subprocess.run(["git", "clone", "-q", str(REPO), str(self.home)], check=True)
        (self.home / ".venv").symlink_to(Path(sys.prefix))  # the venv running these tests
        self.ports = {"pg": _free_port(), "s3": _free_port(), "smtp": _free_port()}
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MF_", "AIRFLOW")) and k != "PGPASSFILE"
        }
        self.env.update(
            MF_PG_PORT=str(self.ports["pg"]),
            MF_S3_PORT=str(self.ports["s3"]),
            MF_SMTP_PORT=str(self.ports["smtp"]),
            MF_API_PORT=str(_free_port()),
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        )

    def run(self, *command: str) -> str:
        done = subprocess.run(
            command, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    @property
    def pgpass(self) -> Path:
        """The clone's libpq password file (written by its scripts/services.sh)."""
        return self.home / "var" / "pg" / "pgpass"

    def warehouse(self, user: str = "postgres", passfile: Path | None = None):
        import psycopg

        url = f"postgresql://{user}@127.0.0.1:{self.ports['pg']}/meters"
        return psycopg.connect(
            url, autocommit=True, connect_timeout=5, passfile=str(passfile or self.pgpass)
        )

    def s3(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.ports['s3']}",
            region_name="eu-west-2",
            aws_access_key_id="meterflow-local",
            aws_secret_access_key="meterflow-local",
        )


@pytest.fixture(scope="module")
def clone():
    if os.geteuid() != 0:
        pytest.skip("only root runs PostgreSQL as the postgres OS user")
    made = Clone()
    try:
        # -o: the venv is this one (linked), already installed: `setup` has nothing to do
        made.start_output = made.run("make", "-o", ".venv/.installed", "services")
        yield made
    finally:
        subprocess.run(
            ["scripts/services.sh", "clean"], cwd=made.home, env=made.env, capture_output=True
        )
        shutil.rmtree(made.folder, ignore_errors=True)


def test_a_clone_in_a_folder_closed_to_postgres_starts_its_stack(clone):
    assert stat.S_IMODE(clone.folder.stat().st_mode) == 0o700  # and stays so
    with clone.warehouse() as conn:
        data_dir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
        assert conn.execute("SELECT current_database()").fetchone()[0] == "meters"
    assert not data_dir.startswith(str(clone.folder))  # the cluster lives where postgres can go
    assert (clone.home / "var" / "pg").resolve() == Path(data_dir).parent
    assert "cannot reach" in clone.start_output  # and the user is told where it went


def _refused_without_password(clone) -> bool:
    import psycopg

    try:
        clone.warehouse("meterflow", passfile=Path(os.devnull)).close()
    except psycopg.OperationalError as exc:
        return "password" in str(exc)
    return False


def test_the_clones_postgres_asks_for_the_generated_password_of_every_role(clone):
    password = clone.home / "var" / "pg" / "password"
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert stat.S_IMODE(clone.pgpass.stat().st_mode) == 0o600
    assert _refused_without_password(clone)
    for user in ("postgres", "meterflow", "airflow"):
        with clone.warehouse(user) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (user,)
    with clone.warehouse() as conn:
        rules = conn.execute(
            "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE error IS NULL"
        ).fetchall()
    assert rules == [("scram-sha-256",)]


def test_a_clone_postgres_can_reach_nowhere_stops_with_a_clear_error():
    if os.geteuid() != 0:
        pytest.skip("only root runs PostgreSQL as the postgres OS user")
    lost = Clone()
    try:
        lost.env["MF_PG_STATE_ROOT"] = str(lost.folder / "state")  # inside the closed folder
        done = subprocess.run(
            ["scripts/services.sh", "start"],
            cwd=lost.home, env=lost.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode != 0
        assert "postgres OS user cannot write" in done.stderr
        assert "MF_PG_STATE_ROOT" in done.stderr
    finally:
        shutil.rmtree(lost.folder, ignore_errors=True)


def test_rows_and_objects_survive_a_restart_of_the_stack(clone):
    objects = {f"archive/day={d:02d}/part.parquet": os.urandom(2048 + d) for d in range(1, 8)}
    objects["raw/big.csv"] = os.urandom(9 * 1024 * 1024)  # above boto3's multipart threshold
    s3 = clone.s3()
    for key, body in objects.items():
        if key == "raw/big.csv":
            s3.upload_fileobj(io.BytesIO(body), "meterflow", key)
        else:
            s3.put_object(Bucket="meterflow", Key=key, Body=body, Metadata={"rows": "48"})
    with clone.warehouse() as conn:
        conn.execute("CREATE TABLE kept (kwh numeric)")
        conn.execute("INSERT INTO kept VALUES (1.25)")

    clone.run("scripts/services.sh", "stop")
    clone.run("scripts/services.sh", "start")

    s3 = clone.s3()
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="meterflow", Prefix="archive/", PaginationConfig={"PageSize": 3}
    )
    listed = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert listed == sorted(k for k in objects if k.startswith("archive/"))
    for key, body in objects.items():
        assert s3.get_object(Bucket="meterflow", Key=key)["Body"].read() == body
    assert s3.head_object(Bucket="meterflow", Key=listed[0])["Metadata"] == {"rows": "48"}
    with clone.warehouse() as conn:
        assert conn.execute("SELECT kwh FROM kept").fetchall() == [(Decimal("1.25"),)]


def test_archived_readings_come_back_value_for_value_after_a_restart_of_the_stack(
    clone, monkeypatch
):
    import json

    import psycopg

    from meterflow import archive, warehouse
    from tests.integration.test_archive import CUTOFF, NOW, _insert, _readings, _table

    url = f"postgresql://meterflow@127.0.0.1:{clone.ports['pg']}/meters"
    s3 = {"endpoint_url": f"http://127.0.0.1:{clone.ports['s3']}", "region_name": "eu-west-2"}
    monkeypatch.setenv("PGPASSFILE", str(clone.pgpass))
    monkeypatch.setenv("AIRFLOW_CONN_METER_WAREHOUSE", url)
    monkeypatch.setenv("MF_S3_BUCKET", "meterflow")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "login": "meterflow-local",
                    "password": "meterflow-local", "extra": s3}),
    )  # fmt: skip
    rows = _readings("A")
    with psycopg.connect(url, autocommit=True) as conn:
        warehouse.migrate(conn)
        _insert(conn, "A", rows)
    archive.archive_readings(now=NOW, retention_days=30, sources=["A"], run_id="pre-restart")
    with psycopg.connect(url, autocommit=True) as conn:
        assert _table(conn, "A") == [r for r in rows if r[1] >= CUTOFF]  # the old rows left

    clone.run("scripts/services.sh", "stop")
    clone.run("scripts/services.sh", "start")

    archive.restore(source="A", first_day=rows[0][1].date(), last_day=CUTOFF.date())
    with psycopg.connect(url, autocommit=True) as conn:
        assert _table(conn, "A") == rows


def test_a_cluster_made_with_trust_is_moved_to_the_generated_password_on_start(clone):
    """A cluster made by the earlier scripts (trust, no password, no password file): the next
    start sets a generated password on its roles and switches it to scram; nothing is lost."""
    with clone.warehouse() as conn:
        hba = conn.execute("SELECT current_setting('hba_file')").fetchone()[0]
        conn.execute("CREATE TABLE IF NOT EXISTS kept_through_auth (n int)")
        conn.execute("INSERT INTO kept_through_auth VALUES (7)")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*as_postgres, "sed", "-i", "-E", "s/scram-sha-256[[:space:]]*$/trust/", hba],
            check=True,
        )
        conn.execute("SELECT pg_reload_conf()")
        for role in ("postgres", "meterflow", "airflow"):
            conn.execute(f"ALTER ROLE {role} PASSWORD NULL")
    (clone.home / "var" / "pg" / "password").unlink()
    clone.pgpass.unlink()
    assert not _refused_without_password(clone)  # trust: anyone on this machine gets in

    out = clone.run("make", "-o", ".venv/.installed", "services")

    assert "switching" in out and "scram-sha-256" in out
    assert _refused_without_password(clone)
    with clone.warehouse() as conn:
        assert conn.execute("SELECT n FROM kept_through_auth").fetchall() == [(7,)]
    for user in ("meterflow", "airflow"):
        with clone.warehouse(user) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (user,)


def test_make_clean_deletes_the_cluster_kept_outside_the_clone(clone):
    with clone.warehouse() as conn:
        data_dir = Path(conn.execute("SELECT current_setting('data_directory')").fetchone()[0])
    clone.run("make", "clean")
    assert not data_dir.exists()
    assert not (clone.home / "var").exists()
