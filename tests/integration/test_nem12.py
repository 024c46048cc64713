"""NEM12 files through ``ingest.load_file`` into the real PostgreSQL, with the shipped nem12 feed:
channels, units, NEM time and the integrity rules of the AEMO specification (issue 17)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from meterflow import ingest, readers
from meterflow.models import Reason

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
NMI = "QB01234567"  # a real-shaped NMI: 10 characters, no O or I
HEADER = "100,NEM12,202501160000,MDP1,RETAILER1\n"


def values(n: int, value: str = "0.5") -> str:
    return ",".join([value] * n)


def day(date: str, n: int = 48, value: str = "0.5", quality: str = "A") -> str:
    return f"300,{date},{values(n, value)},{quality},,,{date}235959,\n"


def channel(suffix: str, unit: str = "kWh", interval: int = 30, nmi: str = NMI) -> str:
    return f"200,{nmi},E1B1Q1,1,{suffix},N1,METER1,{unit},{interval},\n"


def land(landing: Path, name: str, text: str) -> Path:
    path = landing / "nem12" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(path: Path, landing: Path):
    return ingest.load_file(path, landing_dir=landing, now=NOW)


def staged(db, batch_id: int) -> list[tuple]:
    return db.execute(
        """SELECT meter_id, channel, source, interval_start, kwh, quality FROM staging.reading
            WHERE batch_id = %s ORDER BY meter_id, channel, interval_start""",
        (batch_id,),
    ).fetchall()


def per_channel(db, batch_id: int) -> dict[str, tuple[int, Decimal]]:
    rows = db.execute(
        """SELECT channel, count(*), sum(kwh) FROM staging.reading WHERE batch_id = %s
            GROUP BY channel""",
        (batch_id,),
    ).fetchall()
    return {c: (n, total) for c, n, total in rows}


def rejected(db, batch_id: int) -> list[tuple]:
    return db.execute(
        """SELECT row_no, meter_id, reason, detail FROM audit.rejected_row WHERE batch_id = %s
            ORDER BY row_no""",
        (batch_id,),
    ).fetchall()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- channels, units, time ------------------------------------------------------------------


def test_a_solar_nmi_keeps_its_import_and_export_channels(db, landing, bucket):
    text = (
        HEADER
        + channel("E1")
        + day("20250115", value="0.5")
        + day("20250116", value="0.5")
        + channel("B1")
        + day("20250115", value="0.25")
        + day("20250116", value="0.25")
        + "900\n"
    )
    result = load(land(landing, "solar.csv", text), landing)
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (192, 192, 0)
    assert result.rows_duplicate == 0
    assert per_channel(db, result.batch_id) == {
        "E1": (96, Decimal("48.000")),
        "B1": (96, Decimal("24.000")),
    }


def test_two_import_channels_with_equal_values_are_both_kept(db, landing, bucket):
    text = HEADER + channel("E1") + day("20250115") + channel("E2") + day("20250115") + "900\n"
    result = load(land(landing, "two.csv", text), landing)
    assert (result.rows_staged, result.rows_duplicate) == (96, 0)
    assert per_channel(db, result.batch_id) == {
        "E1": (48, Decimal("24.000")),
        "E2": (48, Decimal("24.000")),
    }


def test_reactive_channels_are_stored_in_k_units_and_do_not_fail_the_file(db, landing, bucket):
    text = (
        HEADER
        + channel("E1", "kWh")
        + day("20250115", value="0.5")
        + channel("Q1", "kVArh")
        + day("20250115", value="0.2")
        + channel("K1", "VArh")
        + day("20250115", value="300")
        + "900\n"
    )
    result = load(land(landing, "reactive.csv", text), landing)
    assert result.status == "staged"
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (144, 144, 0)
    assert per_channel(db, result.batch_id) == {
        "E1": (48, Decimal("24.000")),
        "Q1": (48, Decimal("9.600")),
        "K1": (48, Decimal("14.400")),  # 300 VArh = 0.3 kVArh per half hour
    }


def test_times_are_nem_time_utc_plus_10_all_year_and_interval_ending(db, landing, bucket):
    # 15 January is summer in Sydney (UTC+11) but NEM time stays UTC+10
    text = HEADER + channel("E1") + day("20250115") + "900\n"
    result = load(land(landing, "time.csv", text), landing)
    rows = staged(db, result.batch_id)
    assert rows[0][3] == utc("2025-01-14T14:00:00+00:00")  # ends 00:30 +10: starts 00:00 +10
    assert rows[-1][3] == utc("2025-01-15T13:30:00+00:00")


def test_fifteen_minute_values_are_summed_and_take_the_worst_quality_of_a_400(db, landing, bucket):
    text = (
        HEADER
        + channel("E1", "Wh", 15)
        + day("20250115", n=96, value="100", quality="V")
        + "400,1,47,A,,\n"
        + "400,48,96,E52,,\n"
        + "900\n"
    )
    result = load(land(landing, "quarter.csv", text), landing)
    rows = staged(db, result.batch_id)
    assert len(rows) == 48 and {r[4] for r in rows} == {Decimal("0.2")}
    qualities = [r[5] for r in rows]
    # half hour 24 holds intervals 47 (A) and 48 (E): the worst, E
    assert qualities == ["A"] * 23 + ["E"] * 25


def test_real_nmis_are_staged_by_the_shipped_feed_as_source_c(db, landing, bucket):
    text = (
        HEADER
        + channel("E1", nmi="6001234567")
        + day("20250115")
        + channel("E1", nmi="NCDE001234")
        + day("20250115")
        + channel("E1", nmi="SMR89140C")  # the utility's own ids still load
        + day("20250115")
        + channel("E1", nmi="NMI0001234")  # an I: never in an NMI
        + day("20250115")
        + "900\n"
    )
    result = load(land(landing, "real.csv", text), landing)
    assert (result.rows_staged, result.rows_rejected) == (144, 48)
    meters = db.execute(
        "SELECT DISTINCT meter_id, source FROM staging.reading WHERE batch_id = %s ORDER BY 1",
        (result.batch_id,),
    ).fetchall()
    assert meters == [("6001234567", "C"), ("NCDE001234", "C"), ("SMR89140C", "C")]
    assert result.reasons == {Reason.MALFORMED_METER_ID.value: 48}


def test_an_upper_case_zip_is_picked_up_and_read_from_its_member(db, landing, bucket):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "NEM12#1#MDP1#RETAILER1.CSV", HEADER + channel("E1") + day("20250115") + "900\n"
        )
    path = landing / "nem12" / "NEM12#1#MDP1#RETAILER1.ZIP"
    path.parent.mkdir(parents=True)
    path.write_bytes(buffer.getvalue())
    assert ingest.landed_files(landing) == [path]
    result = load(path, landing)
    assert (result.feed, result.rows_staged) == ("nem12", 48)
    assert (landing / "processed" / "nem12" / path.name).exists()


# --- integrity: the whole file fails ----------------------------------------------------------


def assert_failed(db, landing: Path, path: Path, match: str) -> None:
    with pytest.raises(readers.UnreadableFile, match=match):
        load(path, landing)
    assert db.execute("SELECT count(*) FROM staging.reading").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM audit.rejected_row").fetchone() == (0,)
    status, error = db.execute("SELECT status, error FROM audit.load_batch").fetchone()
    assert status == "failed" and path.name in error
    assert (landing / "failed" / "nem12" / path.name).exists()
    assert not path.exists()


def test_a_file_without_its_100_header_fails_whole(db, landing, bucket):
    path = land(landing, "nohead.csv", channel("E1") + day("20250115") + "900\n")
    assert_failed(db, landing, path, r"nohead\.csv line 1: the first record is '200'")


def test_a_file_without_its_900_end_record_fails_whole(db, landing, bucket):
    path = land(landing, "noend.csv", HEADER + channel("E1") + day("20250115") + day("20250116"))
    assert_failed(db, landing, path, r"noend\.csv: no 900 end record after line 4")


def test_a_file_truncated_mid_line_fails_whole(db, landing, bucket):
    text = HEADER + channel("E1") + day("20250115") + day("20250116")
    path = land(landing, "cut.csv", text[: len(text) - 200])
    assert_failed(db, landing, path, r"cut\.csv: no 900 end record")


def test_records_after_the_900_fail_the_file(db, landing, bucket):
    text = HEADER + channel("E1") + day("20250115") + "900\n" + day("20250116")
    path = land(landing, "after.csv", text)
    assert_failed(db, landing, path, r"after\.csv line 5: a 300 record after the 900 end record")


# --- integrity: one record rejected, its day counted ----------------------------------------


def test_a_300_record_with_the_wrong_value_count_is_one_rejected_row(db, landing, bucket):
    text = (
        HEADER
        + channel("E1", interval=15)
        + day("20250115", n=96)
        + day("20250116", n=48)  # a 15-minute channel needs 96 values
        + "900\n"
    )
    result = load(land(landing, "count.csv", text), landing)
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (49, 48, 1)
    (row,) = rejected(db, result.batch_id)
    assert row[:3] == (4, NMI, Reason.MALFORMED_RECORD.value)
    assert "48 interval values" in row[3] and "96 values a day" in row[3]


def test_a_300_record_whose_update_time_would_be_read_as_a_value_is_rejected(db, landing, bucket):
    # 47 values: without the count check its quality and UpdateDateTime shift into the day
    text = HEADER + channel("E1") + day("20250115", n=47) + "900\n"
    result = load(land(landing, "short.csv", text), landing)
    assert (result.rows_staged, result.rows_rejected) == (0, 1)
    assert result.reasons == {Reason.MALFORMED_RECORD.value: 1}


def test_a_300_record_without_its_quality_flag_is_rejected_not_taken_as_actual(db, landing, bucket):
    text = HEADER + channel("E1") + day("20250115", quality="") + day("20250116") + "900\n"
    result = load(land(landing, "noq.csv", text), landing)
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (49, 48, 1)
    (row,) = rejected(db, result.batch_id)
    assert row[0] == 3 and row[2] == Reason.MALFORMED_RECORD.value
    assert "no quality flag" in row[3]


def test_a_400_record_out_of_its_days_range_rejects_its_300_record(db, landing, bucket):
    text = (
        HEADER
        + channel("E1")
        + day("20250115", quality="V")
        + "400,1,24,A,,\n"
        + "400,25,49,E52,,\n"  # a 30-minute day has intervals 1-48
        + day("20250116")
        + "900\n"
    )
    result = load(land(landing, "event.csv", text), landing)
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (49, 48, 1)
    (row,) = rejected(db, result.batch_id)
    assert row[0] == 3 and "400 record (line 5)" in row[3] and "25-49" in row[3]
