"""The demo's sample data: every file loads with exactly the faults its manifest promises."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

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
    note = next(n for n in manifest["files"] if n["path"].startswith("spreadsheets/readings_B"))
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


def test_solar_meters_export_on_channel_b1_in_daylight_only_staged_through_ingest(
    db, generated, landing, bucket
):
    out, manifest = generated
    note = next(n for n in manifest["files"] if n["path"].startswith("spreadsheets/channels_"))
    assert note["channels"] == {"B1": 5, "E2": 1, "Q1": 1}
    path = landing / note["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((out / note["path"]).read_bytes())

    result = ingest.load_file(path, landing_dir=landing, now=NOW)

    assert (result.rows_staged, result.rows_rejected) == (note["rows"], 0)
    channels = db.execute(
        """SELECT channel, array_agg(DISTINCT meter_id ORDER BY meter_id), count(*)
             FROM staging.reading WHERE batch_id = %s GROUP BY channel ORDER BY channel""",
        (result.batch_id,),
    ).fetchall()
    half_hours = 21 * 48 + 2  # the range holds the 25-hour 2025-10-26
    assert channels == [
        ("B1", sorted(sample.SOLAR_METERS), 5 * half_hours),
        ("E2", [sample.HOT_WATER_METER], half_hours),
        ("Q1", [sample.REACTIVE_METER], half_hours),
    ]
    night, noon, days_exporting = db.execute(
        """SELECT sum(kwh) FILTER (WHERE local::time >= '17:00' OR local::time < '07:00'),
                  avg(kwh) FILTER (WHERE local::time >= '11:00' AND local::time < '13:30'),
                  count(DISTINCT local::date) FILTER (WHERE kwh > 0)
             FROM (SELECT kwh, interval_start AT TIME ZONE 'Europe/London' AS local
                     FROM staging.reading WHERE channel = 'B1') r"""
    ).fetchone()
    assert night == 0 and noon > Decimal("0.05") and days_exporting == 21
    # the hot water heats at night only (00:30-03:30)
    assert db.execute(
        """SELECT count(*) FROM staging.reading
            WHERE channel = 'E2' AND kwh > 0
              AND (interval_start AT TIME ZONE 'Europe/London')::time NOT BETWEEN '00:30'
                                                                             AND '03:00'"""
    ).fetchone() == (0,)
