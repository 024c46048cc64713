"""MF_ENV through the real stack: one setting moves every feed's landing folder and every S3
prefix — readings, the registry, exclusion lists, raw copies, failed files, archives, reports,
Data Docs, delivery links and outbound tranche files — and nothing of another environment is
read or written."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from glob import glob
from pathlib import Path
from types import SimpleNamespace

import pytest

from meterflow import aggregation, archive, config, delivery, ingest, lifecycle, quality, readers

pytestmark = pytest.mark.integration

READINGS = "meter_id,timestamp,reading_kWh\nSMR00001A,15/01/2025 00:00,0.25\n"
REGISTRY = "meter_id,site,region\nSMR00001A,S1,north\nSMR00002A,S1,north\nSMR00003A,S2,south\n"
EXCLUSIONS = "HDR|HES|1|20261201090000\nSMR00003A|NONCOMM|ADD\nTRL|1\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _keys(s3_client, bucket: str) -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


@pytest.mark.parametrize("env", ["build", "preprod", "prod"])
def test_mf_env_decides_the_landing_folder_and_every_s3_prefix(env, landing, monkeypatch):
    monkeypatch.setenv("MF_ENV", env)
    folder = "" if env == "build" else env

    assert config.get("landing_dir") == landing / folder
    for area in config.S3_AREAS:
        assert config.s3_prefix(area) == f"{folder}/{area}".lstrip("/")
    assert archive.manifest_key("A", date(2025, 1, 2)).startswith(
        f"{folder}/archive/source=A/".lstrip("/")
    )


def test_an_unknown_environment_is_refused_naming_the_setting(monkeypatch):
    monkeypatch.setenv("MF_ENV", "staging")
    with pytest.raises(ValueError, match=r"MF_ENV/mf_env='staging'.*build, preprod, prod"):
        config.get("landing_dir")


def test_a_preprod_run_reads_and_writes_only_below_preprod(
    db, landing, s3_client, bucket, monkeypatch, tmp_path
):
    monkeypatch.setenv("MF_ENV", "preprod")
    build_file = _write(landing / "spreadsheets" / "build.csv", READINGS)  # build's, not ours
    here = landing / "preprod"
    _write(here / "registry" / "meters.csv", REGISTRY)
    _write(here / "exclusions_noncomm" / "noncomm_1.txt", EXCLUSIONS)
    _write(here / "spreadsheets" / "day.csv", READINGS)
    _write(here / "spreadsheets" / "broken.xlsx", "PK\x03\x04 not a workbook")

    # the sensor of meter_ingest and the listing see the preprod files only
    meter_ingest = importlib.import_module("meter_ingest")
    assert sorted(Path(p).name for p in glob(meter_ingest.landed())) == [
        "broken.xlsx",
        "day.csv",
        "meters.csv",
        "noncomm_1.txt",
    ]
    landed = ingest.landed_files()
    assert sorted(p.name for p in landed) == [
        "broken.xlsx",
        "day.csv",
        "meters.csv",
        "noncomm_1.txt",
    ]
    for path in sorted(landed, key=lambda p: p.parent.name != "registry"):  # meters first
        if path.suffix == ".xlsx":
            with pytest.raises(readers.UnreadableFile):
                ingest.load_file(path)
        else:
            ingest.load_file(path)
    assert build_file.exists()
    assert {p.parent.name for p in (here / "processed").glob("*/*")} == {
        "registry",
        "exclusions_noncomm",
        "spreadsheets",
    }
    assert (here / "failed" / "spreadsheets" / "broken.xlsx").exists()
    assert db.execute("SELECT status FROM meter.meter WHERE meter_id = 'SMR00003A'").fetchone() == (
        "excluded",
    )

    # outbound tranche file
    tranche = lifecycle.select_tranche(10, date(2026, 12, 1))
    outbound = lifecycle.write_outbound(tranche["tranche_id"])
    # failed files shelved, processed files gzipped, readings archived
    assert ingest.shelve_failed(older_than_days=0) == 1
    archive.archive_landing(now=datetime.now(UTC) + timedelta(days=60), retention_days=30)
    start = datetime(2025, 1, 15, tzinfo=UTC)
    db.execute(
        "SELECT meter.ensure_partitions('meter.readings_a'::regclass, %s, %s)",
        (start, start + timedelta(days=1)),
    )
    db.execute(
        "INSERT INTO meter.readings_a (meter_id, interval_start, kwh, quality, batch_id, "
        "ingested_at) VALUES ('SMR00001A', %s, %s, 'A', 1, %s)",
        (start, Decimal("0.25"), start),
    )
    archive.archive_readings(now=datetime(2025, 3, 10, tzinfo=UTC), retention_days=30)
    assert archive.archived_days(s3_client, bucket, "A", start.date(), start.date()) == [
        start.date()
    ]
    # reports, Data Docs, a delivery's link
    reports = tmp_path / "reports"
    chart = _write(reports / "2025-01-15" / "peak.csv", "period,kwh\npeak,1\n")
    aggregation.upload([chart], reports, bucket, s3_client)
    monkeypatch.setenv("MF_DATA_DOCS_DIR", str(tmp_path / "docs"))
    _write(tmp_path / "docs" / "index.html", "<html></html>")
    quality.publish_docs(["index.html"])
    attachment = SimpleNamespace(path=chart, name="peak.csv", size=chart.stat().st_size)
    deliverable = SimpleNamespace(period=SimpleNamespace(slug="2025-01"), content_hash="ab" * 16)
    delivery.upload_for_link(attachment, deliverable)

    keys = _keys(s3_client, bucket)
    areas = {k.split("/")[1] for k in keys}
    assert areas == set(config.S3_AREAS), keys
    assert [k for k in keys if not k.startswith("preprod/")] == []
    assert outbound.startswith("preprod/outbound/DCC/TRANCHE_DCC_000001_")
    raw = db.execute("SELECT raw_s3_key FROM audit.load_batch WHERE raw_s3_key IS NOT NULL")
    day = f"{datetime.now(UTC):%Y/%m/%d}"
    [(key,)] = raw  # raw copies are keyed by the file's hash as well as its name (issue 19)
    assert re.fullmatch(rf"preprod/raw/spreadsheets/{day}/[0-9a-f]{{16}}/day\.csv", key), key
