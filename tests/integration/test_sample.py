"""The demo's sample data: every file loads with exactly the faults its manifest promises."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from meterflow import ingest, readers, sample

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 10, 9, 0, tzinfo=UTC)  # the range holds the 2025-10-26 clock change


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    return out, sample.generate(out, days=21, now=NOW)


def reasons(db, batch_id: int) -> dict[str, int]:
    return dict(
        db.execute(
            "SELECT reason, count(*) FROM audit.rejected_row WHERE batch_id = %s GROUP BY 1",
            (batch_id,),
        ).fetchall()
    )


def test_the_manifest_is_written_beside_the_feed_folders(generated):
    out, manifest = generated
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert {f["feed"] for f in manifest["files"]} == {"spreadsheets", "nem12", "stream"}
    assert (manifest["first_day"], manifest["last_day"]) == ("2025-10-20", "2025-11-09")


def test_every_sample_file_loads_with_exactly_its_documented_faults(db, generated, landing, bucket):
    out, manifest = generated
    for note in manifest["files"]:
        path = landing / note["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((out / note["path"]).read_bytes())
        if note["unreadable"]:
            with pytest.raises(readers.UnreadableFile, match="corrupt_export"):
                ingest.load_file(path, landing_dir=landing, now=NOW)
            assert (landing / "failed" / note["path"]).exists()
            continue
        result = ingest.load_file(path, landing_dir=landing, now=NOW)
        assert result.rows_read == note["rows"], note["path"]
        assert reasons(db, result.batch_id) == note["rejects"], note["path"]
        assert result.rows_duplicate == note["duplicates"], note["path"]
        assert (
            result.rows_staged == note["rows"] - sum(note["rejects"].values()) - note["duplicates"]
        ), note["path"]
        (estimated,) = db.execute(
            "SELECT count(*) FROM staging.reading WHERE batch_id = %s AND quality = 'E'",
            (result.batch_id,),
        ).fetchone()
        assert estimated == note["estimated"], note["path"]


def test_the_sample_covers_63_meters_of_three_sources_every_half_hour(
    db, generated, landing, bucket
):
    out, manifest = generated
    for note in manifest["files"]:
        if not note["unreadable"]:
            path = landing / note["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((out / note["path"]).read_bytes())
            ingest.load_file(path, landing_dir=landing, now=NOW)
    per_source = db.execute(
        """SELECT source, count(DISTINCT meter_id), count(DISTINCT interval_start)
             FROM staging.reading GROUP BY source ORDER BY source"""
    ).fetchall()
    # 21 days of half hours, one of them 25 hours long (2025-10-26, Europe/London)
    assert per_source == [("A", 21, 21 * 48 + 2), ("B", 21, 21 * 48 + 2), ("C", 21, 21 * 48 + 2)]


def test_the_sample_has_an_evening_peak_on_weekdays(db, generated, landing, bucket):
    out, manifest = generated
    note = next(n for n in manifest["files"] if n["path"].endswith(".csv"))
    path = landing / note["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((out / note["path"]).read_bytes())
    ingest.load_file(path, landing_dir=landing, now=NOW)
    peak, rest = db.execute(
        """SELECT avg(kwh) FILTER (WHERE local::time >= '16:00' AND local::time < '19:00'),
                  avg(kwh) FILTER (WHERE local::time < '16:00' OR local::time >= '19:00')
             FROM (SELECT kwh, interval_start AT TIME ZONE 'Europe/London' AS local
                     FROM staging.reading) r
            WHERE extract(isodow FROM local) < 6"""
    ).fetchone()
    assert peak > 2 * rest
