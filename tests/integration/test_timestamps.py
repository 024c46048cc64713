"""Timestamps as files really write them, through ``ingest.load_file`` into the real PostgreSQL:
ISO 8601 is always year-month-day, ``dayfirst`` decides day-month forms only, a feed's
``timestamp_format`` is authoritative, an order the file leaves in doubt is rejected with its
reason, and the repeated hour of an autumn clock change follows each meter's readings in time,
whatever order the file lists them in (docs/timestamps-and-channels.md)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from meterflow import feeds, ingest
from meterflow.models import Reason

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
HEADER = "meter_id,timestamp,reading_kWh\n"
SPREADSHEETS = feeds.load_feeds()["spreadsheets"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(path: Path, landing: Path, **kw):
    result = ingest.load_file(path, landing_dir=landing, now=NOW, **kw)
    assert result.balanced  # rows read = staged + rejected + duplicates
    return result


def staged(db, batch_id: int) -> list[tuple]:
    return db.execute(
        """SELECT meter_id, interval_start, kwh FROM staging.reading
            WHERE batch_id = %s ORDER BY meter_id, interval_start""",
        (batch_id,),
    ).fetchall()


def rejected(db, batch_id: int) -> list[tuple]:
    return db.execute(
        "SELECT row_no, reason FROM audit.rejected_row WHERE batch_id = %s ORDER BY row_no",
        (batch_id,),
    ).fetchall()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_long_iso_csv_lands_every_half_hour_on_its_own_day(db, landing, bucket):
    # the example: 2025-02-01 00:00 … 2025-02-14 23:30, naive, Europe/London (= UTC
    # in February); before the fix, dayfirst swapped it onto 2 Jan, 2 Feb, … 2 Dec
    first = datetime(2025, 2, 1)
    slots = [first + timedelta(minutes=30 * i) for i in range(14 * 48)]
    lines = [f"{m},{t:%Y-%m-%d %H:%M},0.5\n" for t in slots for m in ("SMR89134A", "SMR89135B")]
    result = load(write(landing / "spreadsheets" / "iso.csv", HEADER + "".join(lines)), landing)
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (1344, 1344, 0)
    starts = db.execute(
        """SELECT DISTINCT interval_start FROM staging.reading WHERE batch_id = %s
            ORDER BY 1""",
        (result.batch_id,),
    ).fetchall()
    assert [s for (s,) in starts] == [t.replace(tzinfo=UTC) for t in slots]
    per_day = db.execute(
        """SELECT (interval_start AT TIME ZONE 'Europe/London')::date::text, count(*)
             FROM staging.reading WHERE batch_id = %s GROUP BY 1 ORDER BY 1""",
        (result.batch_id,),
    ).fetchall()
    assert per_day == [(f"2025-02-{d:02d}", 96) for d in range(1, 15)]


def test_iso_with_an_offset_a_t_or_a_z_keeps_its_instant(db, landing, bucket):
    f = write(
        landing / "spreadsheets" / "forms.csv",
        HEADER
        + "SMR89134A,2025-07-03 18:00:00+01:00,1\n"  # offset: 17:00 UTC
        + "SMR89135A,2025-07-03T18:00:00,2\n"  # T form, naive: London summer time
        + "SMR89136A,2025-07-03T17:00:00Z,3\n"  # Z: UTC
        + "SMR89137A,2025-07-03T19:00+0200,4\n"  # offset without a colon
        + "SMR89138A,2025-01-03T10:30,5\n",  # winter, naive: London = UTC
    )
    result = load(f, landing)
    assert staged(db, result.batch_id) == [
        ("SMR89134A", utc("2025-07-03T17:00:00+00:00"), Decimal("1")),
        ("SMR89135A", utc("2025-07-03T17:00:00+00:00"), Decimal("2")),
        ("SMR89136A", utc("2025-07-03T17:00:00+00:00"), Decimal("3")),
        ("SMR89137A", utc("2025-07-03T17:00:00+00:00"), Decimal("4")),
        ("SMR89138A", utc("2025-01-03T10:30:00+00:00"), Decimal("5")),
    ]


def test_day_month_dates_read_day_first_and_month_first_as_the_feed_says(db, landing, bucket):
    text = HEADER + "SMR89134A,{},1\nSMR89134A,{},2\n"
    day_first = write(
        landing / "spreadsheets" / "uk.csv", text.format("03/04/2025 00:00", "15.01.2025 00:30")
    )
    result = load(day_first, landing)
    assert staged(db, result.batch_id) == [
        ("SMR89134A", utc("2025-01-15T00:30:00+00:00"), Decimal("2")),
        ("SMR89134A", utc("2025-04-02T23:00:00+00:00"), Decimal("1")),  # 3 April, BST
    ]
    us = dataclasses.replace(SPREADSHEETS, dayfirst=False)
    month_first = write(
        landing / "spreadsheets" / "us.csv", text.format("04/03/2025 00:00", "01-15-2025 00:30")
    )
    result = load(month_first, landing, feed=us)
    assert staged(db, result.batch_id) == [
        ("SMR89134A", utc("2025-01-15T00:30:00+00:00"), Decimal("2")),
        ("SMR89134A", utc("2025-04-02T23:00:00+00:00"), Decimal("1")),  # 3 April, BST
    ]


def test_a_file_mixing_iso_and_day_month_rows_loads_each_row_right(db, landing, bucket):
    f = write(
        landing / "spreadsheets" / "mixed.csv",
        HEADER
        + "SMR89134A,2025-02-03 00:00,1\n"  # ISO: 3 February, whatever dayfirst says
        + "SMR89134A,03/02/2025 00:30,2\n"  # day/month: 3 February
        + "SMR89134A,2025-02-03T01:00:00Z,3\n"
        + "SMR89134A,13/02/2025 00:00,4\n",
    )
    result = load(f, landing)
    assert (result.rows_staged, result.rows_rejected) == (4, 0)
    assert [s for _, s, _ in staged(db, result.batch_id)] == [
        utc("2025-02-03T00:00:00+00:00"),
        utc("2025-02-03T00:30:00+00:00"),
        utc("2025-02-03T01:00:00+00:00"),
        utc("2025-02-13T00:00:00+00:00"),
    ]


def test_a_month_first_file_in_a_day_first_feed_is_rejected_never_swapped(db, landing, bucket):
    # 03/04 and 04/05 read both ways and come before any proof of the file's order: they are
    # held back, and rejected once 01/15 shows that the file is not day/month
    lines = ["03/04/2025 00:00", "04/05/2025 00:00", "01/15/2025 00:00", "2025-01-20 00:00"]
    f = write(
        landing / "spreadsheets" / "us-in-uk.csv",
        HEADER + "".join(f"SMR89134A,{t},1\n" for t in lines),
    )
    result = load(f, landing, chunk_rows=1)  # the proof arrives two chunks later
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (4, 1, 3)
    assert rejected(db, result.batch_id) == [
        (2, Reason.AMBIGUOUS_TIMESTAMP),
        (3, Reason.AMBIGUOUS_TIMESTAMP),
        (4, Reason.MIXED_TIMESTAMP_FORMATS),
    ]
    details = dict(
        db.execute(
            "SELECT row_no, detail FROM audit.rejected_row WHERE batch_id = %s",
            (result.batch_id,),
        ).fetchall()
    )
    assert "'03/04/2025 00:00'" in details[2] and "'01/15/2025 00:00'" in details[2]
    assert "month/day" in details[4] and "dayfirst: true" in details[4]
    assert result.reasons == {"ambiguous_timestamp": 2, "mixed_timestamp_formats": 1}


def test_a_feeds_timestamp_format_is_the_only_form_it_takes(db, landing, bucket):
    feed = dataclasses.replace(SPREADSHEETS, timestamp_format="%d/%m/%Y %H:%M")
    f = write(
        landing / "spreadsheets" / "fmt.csv",
        HEADER + "SMR89134A,03/04/2025 00:00,1\nSMR89134A,2025-04-03 00:30,2\n",
    )
    result = load(f, landing, feed=feed)
    assert staged(db, result.batch_id) == [
        ("SMR89134A", utc("2025-04-02T23:00:00+00:00"), Decimal("1"))
    ]
    assert rejected(db, result.batch_id) == [(3, Reason.UNPARSEABLE_TIMESTAMP)]
    (detail,) = db.execute(
        "SELECT detail FROM audit.rejected_row WHERE batch_id = %s", (result.batch_id,)
    ).fetchone()
    assert "'2025-04-03 00:30'" in detail and "%d/%m/%Y %H:%M" in detail


# --- the autumn clock change: 26 October 2025, 01:00-02:00 happens twice in London -----------


def _autumn_day(meters: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(meter, local text, kWh) for every half hour of the day, in time order: 50 readings a
    meter, 01:00 and 01:30 twice (summer time, then winter time); kWh numbers them."""
    local = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
    local[4:4] = ["01:00", "01:30"]
    return [
        (meter, f"2025-10-26 {t}", f"{k}.{i:02d}")
        for k, meter in enumerate(meters, start=1)
        for i, t in enumerate(local)
    ]


def _autumn_expected(meters: tuple[str, ...]) -> list[tuple]:
    start = utc("2025-10-25T23:00:00+00:00")  # local midnight, BST
    return [
        (meter, start + timedelta(minutes=30 * i), Decimal(f"{k}.{i:02d}"))
        for k, meter in enumerate(meters, start=1)
        for i in range(50)
    ]


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_the_repeated_autumn_hour_follows_the_readings_order_in_time(
    db, landing, bucket, newest_first
):
    meters = ("SMR89134A", "SMR89135A")
    rows = _autumn_day(meters)
    if newest_first:
        rows.reverse()
    f = write(
        landing / "spreadsheets" / "autumn.csv",
        HEADER + "".join(f"{m},{t},{k}\n" for m, t, k in rows),
    )
    result = load(f, landing, chunk_rows=7)  # a meter's repeated hour spans chunks
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (100, 100, 0)
    assert staged(db, result.batch_id) == _autumn_expected(meters)


def test_a_lone_reading_of_the_repeated_hour_is_rejected_not_guessed(db, landing, bucket):
    rows = [r for r in _autumn_day(("SMR89134A",)) if not r[1].endswith(("01:00", "01:30"))]
    rows.insert(2, ("SMR89134A", "2025-10-26 01:00", "9.99"))  # summer or winter? no telling
    rows.insert(3, ("SMR89134A", "2025-10-26 01:30", "9.98"))
    f = write(
        landing / "spreadsheets" / "lone.csv",
        HEADER + "".join(f"{m},{t},{k}\n" for m, t, k in rows),
    )
    result = load(f, landing)
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (48, 46, 2)
    assert rejected(db, result.batch_id) == [
        (4, Reason.AMBIGUOUS_LOCAL_TIME),
        (5, Reason.AMBIGUOUS_LOCAL_TIME),
    ]
    (detail,) = db.execute(
        "SELECT detail FROM audit.rejected_row WHERE batch_id = %s AND row_no = 4",
        (result.batch_id,),
    ).fetchone()
    assert "'2025-10-26 01:00'" in detail and "Europe/London" in detail


def test_one_missing_reading_of_the_repeated_hour_is_placed_by_its_neighbours(db, landing, bucket):
    # 01:00 summer, 01:30 summer, 01:30 winter: the lone 01:00 comes before both 01:30s in a
    # file listed in time order, so it can only be summer time
    rows = _autumn_day(("SMR89134A",))
    del rows[4]  # the winter-time 01:00
    f = write(
        landing / "spreadsheets" / "gap.csv",
        HEADER + "".join(f"{m},{t},{k}\n" for m, t, k in rows),
    )
    result = load(f, landing)
    assert (result.rows_staged, result.rows_rejected) == (49, 0)
    expected = _autumn_expected(("SMR89134A",))
    del expected[4]
    assert staged(db, result.batch_id) == expected
