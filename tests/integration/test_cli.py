"""``python -m meterflow ingest PATH [--feed NAME] [--dry-run]`` as a user runs it, against the
real PostgreSQL and S3 of the local stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NMI = "QB01234567"
GOOD = (
    "100,NEM12,202501160000,MDP1,RETAILER1\n"
    f"200,{NMI},E1B1,1,E1,N1,METER1,kWh,30,\n"
    f"300,20250115,{','.join(['0.5'] * 48)},A,,,20250116000000,\n"
    f"300,20250116,{','.join(['0.5'] * 47)},A,,,20250117000000,\n"  # one value short
    "900\n"
)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    return subprocess.run(
        [sys.executable, "-m", "meterflow", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def land(landing: Path, name: str, text: str) -> Path:
    path = landing / "nem12" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def counts(db) -> tuple[int, int, int]:
    return db.execute(
        """SELECT (SELECT count(*) FROM audit.load_batch), (SELECT count(*) FROM staging.reading),
                  (SELECT count(*) FROM audit.rejected_row)"""
    ).fetchone()


def test_ingest_loads_a_file_and_prints_its_accounting(db, landing, bucket, s3_client):
    path = land(landing, "day.csv", GOOD)
    done = cli("ingest", str(path))
    assert done.returncode == 0, done.stderr
    assert "day.csv: read 49 rows, staged 48, rejected 1, duplicates 0 (batch 1)" in done.stdout
    assert "rejected malformed_record: 1" in done.stdout
    assert counts(db) == (1, 48, 1)
    assert (landing / "processed" / "nem12" / "day.csv").exists()
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.startswith("raw/nem12/") and k.endswith("/day.csv") for k in keys)


def test_ingest_of_a_bad_file_exits_non_zero_and_moves_it_to_failed(db, landing, bucket):
    path = land(landing, "cut.csv", GOOD.replace("900\n", ""))
    done = cli("ingest", str(path))
    assert done.returncode == 1
    assert "cut.csv: no 900 end record" in done.stderr
    assert (landing / "failed" / "nem12" / "cut.csv").exists()
    assert (landing / "failed" / "nem12" / "cut.csv.error.txt").exists()
    assert db.execute("SELECT status FROM audit.load_batch").fetchall() == [("failed",)]
    assert counts(db)[1:] == (0, 0)


def test_dry_run_prints_the_accounting_and_writes_nothing(db, landing, bucket, s3_client):
    outside = landing.parent / "elsewhere.csv"  # not in a feed folder: --feed names the feed
    outside.write_text(GOOD)
    done = cli("ingest", str(outside), "--feed", "nem12", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dry run, nothing written: elsewhere.csv: read 49 rows, staged 48, rejected 1" in (
        done.stdout
    )
    assert counts(db) == (0, 0, 0)
    assert outside.exists()
    assert not (landing / "processed").exists()
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_a_file_no_feed_takes_is_a_usage_error(db, landing, bucket):
    stray = landing.parent / "stray.csv"
    stray.write_text(GOOD)
    done = cli("ingest", str(stray))
    assert done.returncode == 2 and "give --feed" in done.stderr
    assert counts(db) == (0, 0, 0)
