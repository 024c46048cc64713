"""Segregation against the real PostgreSQL: validated batches into meter.readings_a|b|c.

Batches are written the way ingestion and the quality gate leave them: rows in staging.reading
and an audit.load_batch row with status 'validated' whose rows_staged counts them.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from meterflow import SQL_DIR, segregate
from meterflow.models import Quality

pytestmark = pytest.mark.integration

T0 = datetime(2025, 1, 15, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


def _batch(db, readings: list[tuple], status: str = "validated") -> int:
    """A batch of (meter_id, interval_start, kwh, quality) readings; returns its id."""
    n = len(readings)
    (batch_id,) = db.execute(
        """INSERT INTO audit.load_batch (feed, file_name, file_path, sha256, size_bytes, status,
                                         rows_read, rows_staged)
           VALUES ('spreadsheets', 'f.csv', '/landing/f.csv',
                   lpad(md5(random()::text), 64, '0'), 0, %s, %s, %s)
           RETURNING batch_id""",
        (status, n, n),
    ).fetchone()
    with db.cursor().copy(
        "COPY staging.reading (batch_id, row_no, meter_id, source, interval_start, kwh, quality, "
        "ingested_at) FROM STDIN"
    ) as copy:
        for row_no, (meter, start, kwh, quality) in enumerate(readings, start=2):
            copy.write_row(
                (batch_id, row_no, meter, meter[-1], start, kwh, quality, T0 + timedelta(days=1))
            )
    return batch_id


def _table(db, source: str) -> list[tuple]:
    table = segregate.table_name(source)
    return db.execute(
        f"SELECT meter_id, interval_start, kwh, quality, batch_id FROM {table} "
        "ORDER BY meter_id, interval_start"
    ).fetchall()


def _all_tables(db) -> dict[str, list[tuple]]:
    return {s: _table(db, s) for s in "ABC"}


def _audit(db, batch_id: int) -> tuple:
    return db.execute(
        "SELECT status, rows_promoted, rows_superseded, rows_kept FROM audit.load_batch "
        "WHERE batch_id = %s",
        (batch_id,),
    ).fetchone()


def _partitions(db) -> list[str]:
    return [
        r
        for (r,) in db.execute(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent IN ('meter.readings_a'::regclass, 'meter.readings_b'::regclass,
                                      'meter.readings_c'::regclass)
                ORDER BY 1"""
        )
    ]


MIXED = [
    ("SMR89134A", T0, Decimal("0.25"), "A"),
    ("SMR89134A", T0 + HALF_HOUR, Decimal("0.5"), "A"),
    ("SMR89140B", T0, Decimal("1.125"), "E"),
    ("SMR89154C", T0, Decimal("2"), "S"),
    ("SMR89154C", T0 + HALF_HOUR, Decimal("0"), "F"),
    ("SMR89135A", T0, Decimal("0.75"), "A"),
]


def test_mixed_batch_puts_every_reading_in_the_table_of_its_suffix_and_nowhere_else(db):
    batch = _batch(db, MIXED)

    result = segregate.promote_batch(db, batch)

    tables = _all_tables(db)
    for source in "ABC":
        expected = sorted((m, t, k, q, batch) for m, t, k, q in MIXED if m.endswith(source))
        assert tables[source] == expected
    assert result.status == "promoted"
    assert result.received() == ["A", "B", "C"]
    assert _audit(db, batch) == ("promoted", 6, 0, 0)


def test_promoting_the_validated_batches_twice_changes_nothing(db):
    first = _batch(db, MIXED)
    second = _batch(db, [("SMR89134A", T0, Decimal("0.3"), "A")])

    results, errors = segregate.promote_validated(db)
    before = (_all_tables(db), _audit(db, first), _audit(db, second), _partitions(db))
    again, again_errors = segregate.promote_validated(db)
    skipped = segregate.promote_batch(db, first)

    assert [r.batch_id for r in results] == [first, second] and errors == []
    assert again == [] and again_errors == []
    assert skipped.skipped_reason == "status is 'promoted', not 'validated'"
    assert (_all_tables(db), _audit(db, first), _audit(db, second), _partitions(db)) == before


def test_an_actual_reading_replaces_an_estimate_and_is_counted_as_superseded(db):
    estimate = _batch(db, [("SMR89140B", T0, Decimal("1.0"), "E")])
    segregate.promote_batch(db, estimate)
    actual = _batch(
        db, [("SMR89140B", T0, Decimal("1.2"), "A"), ("SMR89140B", T0 + HALF_HOUR, Decimal(1), "A")]
    )

    result = segregate.promote_batch(db, actual)

    assert _table(db, "B") == [
        ("SMR89140B", T0, Decimal("1.2"), "A", actual),
        ("SMR89140B", T0 + HALF_HOUR, Decimal(1), "A", actual),
    ]
    assert (result.promoted, result.superseded, result.kept) == (1, 1, 0)
    assert _audit(db, actual) == ("promoted", 1, 1, 0)


def test_an_estimate_does_not_replace_an_actual_reading_and_is_counted_as_kept(db):
    actual = _batch(db, [("SMR89140B", T0, Decimal("1.2"), "A")])
    segregate.promote_batch(db, actual)
    estimate = _batch(db, [("SMR89140B", T0, Decimal("9.9"), "E")])

    result = segregate.promote_batch(db, estimate)

    assert _table(db, "B") == [("SMR89140B", T0, Decimal("1.2"), "A", actual)]
    assert (result.promoted, result.superseded, result.kept) == (0, 0, 1)
    assert _audit(db, estimate) == ("promoted", 0, 0, 1)


def test_a_substituted_reading_replaces_an_estimate_but_not_an_actual_one(db):
    base = _batch(
        db, [("SMR89154C", T0, Decimal("1"), "E"), ("SMR89154C", T0 + HALF_HOUR, Decimal(1), "A")]
    )
    segregate.promote_batch(db, base)
    substituted = _batch(
        db, [("SMR89154C", T0, Decimal("2"), "S"), ("SMR89154C", T0 + HALF_HOUR, Decimal(2), "F")]
    )

    result = segregate.promote_batch(db, substituted)

    assert _table(db, "C") == [
        ("SMR89154C", T0, Decimal("2"), "S", substituted),
        ("SMR89154C", T0 + HALF_HOUR, Decimal(1), "A", base),
    ]
    assert _audit(db, substituted) == ("promoted", 0, 1, 1)
    assert result.reconciled


def test_an_older_batch_promoted_late_does_not_overwrite_a_newer_reading_of_equal_quality(db):
    older = _batch(db, [("SMR89134A", T0, Decimal("1"), "A")])
    newer = _batch(db, [("SMR89134A", T0, Decimal("2"), "A")])

    segregate.promote_batch(db, newer)
    segregate.promote_batch(db, older)

    assert _table(db, "A") == [("SMR89134A", T0, Decimal("2"), "A", newer)]
    assert _audit(db, older) == ("promoted", 0, 0, 1)


def test_a_reconciliation_mismatch_fails_the_batch_with_nothing_promoted(db):
    batch = _batch(db, MIXED)
    # One staged row vanishes after validation: 6 rows validated, 5 left to promote.
    db.execute(
        "DELETE FROM staging.reading WHERE batch_id = %s AND meter_id = 'SMR89140B'", (batch,)
    )

    with pytest.raises(segregate.ReconciliationError, match="reconciliation mismatch") as exc:
        segregate.promote_batch(db, batch)

    assert "promoted 5 + superseded 0 + kept 0 = 5, but 6 rows validated" in str(exc.value)
    assert _all_tables(db) == {"A": [], "B": [], "C": []}
    assert db.execute("SELECT count(*) FROM meter.meter").fetchone() == (0,)
    status, error = db.execute(
        "SELECT status, error FROM audit.load_batch WHERE batch_id = %s", (batch,)
    ).fetchone()
    assert status == "validated" and "reconciliation mismatch" in error


def test_a_failed_batch_does_not_stop_the_others_from_being_promoted(db):
    broken = _batch(db, MIXED)
    db.execute("UPDATE staging.reading SET meter_id = 'SMR89999A' WHERE batch_id = %s", (broken,))
    good = _batch(db, [("SMR89134C", T0, Decimal("1"), "A")])

    results, errors = segregate.promote_validated(db)

    assert [r.batch_id for r in results] == [good]
    assert len(errors) == 1 and f"batch {broken}" in errors[0]
    assert _audit(db, broken)[0] == "validated"
    assert _table(db, "C") == [("SMR89134C", T0, Decimal("1"), "A", good)]


def test_monthly_partitions_are_created_for_exactly_the_months_the_readings_fall_in(db):
    end_of_january = datetime(2025, 1, 31, 23, 30, tzinfo=UTC)
    batch = _batch(
        db,
        [
            ("SMR89134A", end_of_january, Decimal("1"), "A"),
            ("SMR89134A", end_of_january + HALF_HOUR, Decimal("1"), "A"),
            ("SMR89140B", datetime(2025, 3, 10, tzinfo=UTC), Decimal("1"), "A"),
        ],
    )
    assert _partitions(db) == []

    result = segregate.promote_batch(db, batch)

    assert _partitions(db) == ["readings_a_202501", "readings_a_202502", "readings_b_202503"]
    assert result.sources["A"].partitions_created == 2
    rows = db.execute(
        "SELECT tableoid::regclass::text, interval_start FROM meter.readings_a ORDER BY 2"
    ).fetchall()
    assert rows == [
        ("meter.readings_a_202501", end_of_january),
        ("meter.readings_a_202502", end_of_january + HALF_HOUR),
    ]


def test_a_batch_spanning_a_stored_month_and_a_new_one_upserts_the_first_and_loads_the_second(db):
    february = datetime(2025, 2, 1, tzinfo=UTC)
    first = _batch(db, [("SMR89134A", T0, Decimal("1"), "E")])
    segregate.promote_batch(db, first)
    second = _batch(
        db,
        [
            ("SMR89134A", T0, Decimal("2"), "A"),
            ("SMR89134A", T0 + HALF_HOUR, Decimal("3"), "A"),
            ("SMR89134A", february, Decimal("4"), "A"),
        ],
    )

    result = segregate.promote_batch(db, second)

    assert _table(db, "A") == [
        ("SMR89134A", T0, Decimal("2"), "A", second),
        ("SMR89134A", T0 + HALF_HOUR, Decimal("3"), "A", second),
        ("SMR89134A", february, Decimal("4"), "A", second),
    ]
    assert _audit(db, second) == ("promoted", 2, 1, 0)
    assert result.sources["A"].partitions_created == 1
    assert _partitions(db) == ["readings_a_202501", "readings_a_202502"]
    indexes = {
        month: [
            r.replace(month, "")
            for (r,) in db.execute(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass "
                "ORDER BY 1",
                (f"meter.readings_a_{month}",),
            )
        ]
        for month in ("202501", "202502")
    }
    assert indexes["202502"] == indexes["202501"] and "meter.readings_a__pkey" in indexes["202502"]
    again = _batch(db, [("SMR89134A", february, Decimal("5"), "A")])
    segregate.promote_batch(db, again)
    assert _audit(db, again) == ("promoted", 0, 1, 0)


def test_a_reading_staged_twice_for_a_new_month_fails_the_batch_and_creates_no_partition(db):
    batch = _batch(db, [("SMR89134A", T0, Decimal("1"), "A"), ("SMR89134A", T0, Decimal("2"), "A")])

    with pytest.raises(segregate.ReconciliationError, match="staged twice"):
        segregate.promote_batch(db, batch)

    assert _partitions(db) == []
    assert db.execute("SELECT to_regclass('meter.readings_a_loading')").fetchone() == (None,)
    assert _audit(db, batch)[0] == "validated"


def test_unseen_meters_are_registered_as_unassigned_and_known_meters_are_left_alone(db):
    db.execute(
        "INSERT INTO meter.meter (meter_id, source, site, region, owner) "
        "VALUES ('SMR89134A', 'A', 'Depot', 'North', 'Ops')"
    )
    batch = _batch(db, MIXED)

    result = segregate.promote_batch(db, batch)

    assert result.meters_registered == 3
    assert db.execute(
        "SELECT meter_id, source, site, region, owner FROM meter.meter ORDER BY 1"
    ).fetchall() == [
        ("SMR89134A", "A", "Depot", "North", "Ops"),
        ("SMR89135A", "A", None, "unassigned", None),
        ("SMR89140B", "B", None, "unassigned", None),
        ("SMR89154C", "C", None, "unassigned", None),
    ]


def test_staging_rows_of_promoted_batches_are_purged_only_after_the_retention(db):
    old = _batch(db, [("SMR89134A", T0, Decimal("1"), "A")])
    recent = _batch(db, [("SMR89134B", T0, Decimal("1"), "A")])
    waiting = _batch(db, [("SMR89134C", T0, Decimal("1"), "A")], status="staged")
    segregate.promote_batch(db, old)
    segregate.promote_batch(db, recent)
    db.execute(
        "UPDATE audit.load_batch SET promoted_at = now() - interval '8 days' WHERE batch_id = %s",
        (old,),
    )
    for batch in (old, recent):  # the quality gate's profile and day gaps (V014)
        db.execute(
            "INSERT INTO staging.batch_profile (batch_id, meter_id, days, readings, null_kwh,"
            " estimated, future, misaligned, duplicates, incomplete_days)"
            " VALUES (%s, 'SMR89134A', 1, 1, 0, 0, 0, 0, 0, 1)",
            (batch,),
        )
        db.execute(
            "INSERT INTO staging.batch_day_gap (batch_id, meter_id, local_day, readings,"
            " intervals, expected) VALUES (%s, 'SMR89134A', '2025-01-15', 1, 1, 48)",
            (batch,),
        )

    assert segregate.purge_staging(db, retention_days=7) == (1, 1)

    left = db.execute("SELECT batch_id FROM staging.reading ORDER BY 1").fetchall()
    assert left == [(recent,), (waiting,)]
    profiles = db.execute("SELECT batch_id FROM staging.batch_profile").fetchall()
    assert profiles == [(recent,)]
    gaps = db.execute("SELECT batch_id FROM staging.batch_day_gap").fetchall()
    assert gaps == [(recent,)]
    assert db.execute(
        "SELECT staging_purged_at IS NOT NULL FROM audit.load_batch ORDER BY batch_id"
    ).fetchall() == [(True,), (False,), (False,)]
    assert _table(db, "A") == [("SMR89134A", T0, Decimal("1"), "A", old)]
    assert segregate.purge_staging(db, retention_days=7) == (0, 0)


def test_a_rejected_batch_and_old_rejected_rows_are_purged_after_their_retention(db):
    from meterflow import quality

    old = _batch(db, [("SMR89134A", T0, Decimal("99"), "A")], status="rejected")
    fresh = _batch(db, [("SMR89135A", T0, Decimal("99"), "A")], status="rejected")
    for batch, age in ((old, "31 days"), (fresh, "1 day")):
        db.execute(
            "INSERT INTO audit.quality_result (batch_id, suite, success, expectations_evaluated,"
            " expectations_failed, verdict, started_at, finished_at)"
            " VALUES (%s, 'meter_reading', false, 1, 1, 'rejected', now() - %s::interval,"
            " now() - %s::interval)",
            (batch, age, age),
        )
        db.execute(
            "INSERT INTO audit.rejected_row (batch_id, row_no, reason, raw) "
            "VALUES (%s, 9, 'negative_reading', '{}')",
            (batch,),
        )
    db.execute(
        "UPDATE audit.load_batch SET started_at = now() - interval '91 days' WHERE batch_id = %s",
        (old,),
    )

    assert segregate.purge_staging(db) == (1, 1)  # defaults: rejected 30 days, rejects 90

    assert db.execute("SELECT batch_id FROM staging.reading").fetchall() == [(fresh,)]
    assert db.execute("SELECT batch_id FROM audit.rejected_row").fetchall() == [(fresh,)]
    with pytest.raises(quality.NotCheckable, match="staged rows were purged"):
        quality.validate_batch(old, publish=False, alert=False)


def test_a_batch_that_is_not_validated_is_skipped(db):
    batch = _batch(db, MIXED, status="staged")

    result = segregate.promote_batch(db, batch)

    assert result.skipped_reason == "status is 'staged', not 'validated'"
    assert _all_tables(db) == {"A": [], "B": [], "C": []}


def test_sql_quality_rank_matches_the_python_one(db):
    for q in Quality:
        assert db.execute("SELECT meter.quality_rank(%s)", (q.value,)).fetchone() == (q.rank,)


def test_documented_split_queries_turn_one_combined_table_into_three(db, warehouse_url):
    db.execute("DROP SCHEMA IF EXISTS split_demo CASCADE")
    db.execute("CREATE SCHEMA split_demo")
    db.execute(
        "CREATE TABLE split_demo.readings "
        "(meter_id text, timestamp timestamptz, reading_kwh numeric)"
    )
    rows = [
        ("SMR89134A", T0, Decimal("0.25")),
        ("SMR89134A", T0, Decimal("0.25")),  # an exact duplicate: kept once
        (" smr89135a ", T0, Decimal("0.5")),  # untidy spelling of an A meter
        ("SMR89140B", T0, Decimal("1")),
        ("SMR89154C", T0, Decimal("2")),
        ("SMRA1234A", T0, Decimal("9")),  # LIKE 'SMR%A' would take it: not a meter id
        ("SMR89154CA", T0, Decimal("9")),  # nor this
        (None, T0, Decimal("9")),
    ]
    with db.cursor().copy("COPY split_demo.readings FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)

    done = subprocess.run(
        ["psql", warehouse_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-f",
         str(SQL_DIR / "segregate" / "split_combined_table.sql")],
        env={**os.environ, "PGOPTIONS": "-c search_path=split_demo"},
        capture_output=True,
        text=True,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    got = {
        s: db.execute(
            f"SELECT meter_id, timestamp, reading_kwh FROM split_demo.readings_{s} ORDER BY 1"
        ).fetchall()
        for s in "abc"
    }
    assert got == {
        "a": [("SMR89134A", T0, Decimal("0.25")), ("SMR89135A", T0, Decimal("0.5"))],
        "b": [("SMR89140B", T0, Decimal("1"))],
        "c": [("SMR89154C", T0, Decimal("2"))],
    }
    # The closing check: 8 rows = 2 A + 1 B + 1 C + 1 duplicate + 3 with no valid meter id.
    assert done.stdout.strip().splitlines()[-1] == "8|2|1|1|1|3"
    pk = db.execute(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'p' "
        "AND conrelid::regclass::text LIKE 'split_demo.readings_%'"
    ).fetchone()
    assert pk == (3,)
    db.execute("DROP SCHEMA split_demo CASCADE")


# --- the registry feed (meter_id, site, region, owner → meter.meter) -------------------------


def _meters(db) -> list[tuple]:
    return db.execute(
        "SELECT meter_id, source, site, region, owner FROM meter.meter ORDER BY 1"
    ).fetchall()


def test_a_registry_workbook_upserts_meters_and_blank_cells_keep_what_is_stored(db, landing):
    from openpyxl import Workbook

    from meterflow import ingest

    db.execute(
        "INSERT INTO meter.meter (meter_id, source, site, region, owner) VALUES "
        "('SMR89134A', 'A', NULL, 'unassigned', NULL), ('SMR89140B', 'B', 'Mill', 'East', 'Ops')"
    )
    book = Workbook()
    sheet = book.active
    sheet.append(["Meter registry, March 2025"])  # a title row above the header
    sheet.append(["Meter ID", "Site", "Region", "Owner", "Notes"])
    sheet.append(["SMR89134A", "Depot", "North", "Alice", "x"])
    sheet.append([" smr89140b ", None, "South", None, None])  # only the region changes
    sheet.append(["SMR89154C", "Yard", None, "Bob", None])  # new, region blank
    sheet.append([None, None, None, None, None])
    (landing / "registry").mkdir()
    path = landing / "registry" / "meters.xlsx"
    book.save(path)

    result = ingest.load_file(path)

    assert (result.status, result.batch_id, result.rows_read) == ("registered", None, 3)
    assert _meters(db) == [
        ("SMR89134A", "A", "Depot", "North", "Alice"),
        ("SMR89140B", "B", "Mill", "South", "Ops"),
        ("SMR89154C", "C", "Yard", "unassigned", "Bob"),
    ]
    assert (landing / "processed" / "registry" / "meters.xlsx").exists()
    assert db.execute("SELECT count(*) FROM audit.load_batch").fetchone() == (0,)


def test_loading_the_same_registry_again_changes_nothing(db, landing):
    from meterflow import feeds, registry

    (landing / "registry").mkdir()
    path = landing / "registry" / "meters.csv"
    path.write_text("meter_id,site,region,owner\nSMR89134A,Depot,North,Alice\n")
    feed = feeds.load_feeds()["registry"]

    assert registry.upsert(db, registry.parse(path, feed)) == (1, 0)
    first = db.execute("SELECT *, xmin::text FROM meter.meter").fetchall()
    assert registry.upsert(db, registry.parse(path, feed)) == (0, 0)
    assert db.execute("SELECT *, xmin::text FROM meter.meter").fetchall() == first


def test_a_registry_capacity_lets_that_site_report_more_than_the_global_limit(db, landing, bucket):
    from meterflow import ingest

    (landing / "registry").mkdir()
    (landing / "spreadsheets").mkdir()
    registry_file = landing / "registry" / "meters.csv"
    registry_file.write_text("meter_id,site,Capacity\nSMR89134A,Factory,400\nSMR89135A,Flat,\n")
    ingest.load_file(registry_file)
    assert db.execute("SELECT meter_id, capacity_kwh FROM meter.meter ORDER BY 1").fetchall() == [
        ("SMR89134A", Decimal("400")),
        ("SMR89135A", None),
    ]

    readings = landing / "spreadsheets" / "big.csv"
    readings.write_text(
        "meter_id,timestamp,reading_kwh\n"
        "SMR89134A,15/01/2025 12:00,300\n"
        "SMR89135A,15/01/2025 12:00,300\n"
    )
    result = ingest.load_file(readings)

    assert (result.rows_staged, result.rows_rejected) == (1, 1)
    staged = db.execute("SELECT meter_id, kwh FROM staging.reading").fetchall()
    assert staged == [("SMR89134A", Decimal("300"))]
    reject = db.execute("SELECT meter_id, reason FROM audit.rejected_row").fetchall()
    assert reject == [("SMR89135A", "implausible_reading")]


def test_a_registry_capacity_that_is_not_a_positive_number_names_the_row(db, landing):
    from meterflow import ingest, readers

    (landing / "registry").mkdir()
    path = landing / "registry" / "meters.csv"
    path.write_text("meter_id,capacity_kwh\nSMR89134A,400\nSMR89135A,-5\nSMR89136A,lots\n")

    with pytest.raises(readers.UnreadableFile) as exc:
        ingest.load_file(path)

    assert "meters.csv row 3: capacity '-5' is not a positive number" in str(exc.value)
    assert "meters.csv row 4: capacity 'lots' is not a positive number" in str(exc.value)
    assert _meters(db) == []


def test_a_registry_file_with_a_bad_row_loads_nothing_and_names_the_row(db, landing):
    from meterflow import ingest, readers

    (landing / "registry").mkdir()
    path = landing / "registry" / "meters.csv"
    path.write_text(
        "meter_id,site,region,owner\n"
        "SMR89134A,Depot,North,Alice\n"
        "SMR8913A,Depot,North,Alice\n"
        "SMR89140B,Mill,East,Ops\n"
        "SMR89134A,Depot,South,Alice\n"
    )

    with pytest.raises(readers.UnreadableFile) as exc:
        ingest.load_file(path)

    message = str(exc.value)
    assert "meters.csv row 3: meter id 'SMR8913A' does not match" in message
    assert "meters.csv row 5: meter SMR89134A is also meters.csv row 2 with different" in message
    assert _meters(db) == []
    error_file = landing / "failed" / "registry" / "meters.csv.error.txt"
    assert "row 3" in error_file.read_text()
