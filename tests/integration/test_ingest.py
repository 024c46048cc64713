"""Loading landed files into the real PostgreSQL and S3: accounting, exactly once, atomicity."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from meterflow import ingest
from meterflow.models import Reason

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
HEADER = "meter_id,timestamp,reading_kWh\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(path: Path, landing: Path, **kw):
    return ingest.load_file(path, landing_dir=landing, now=NOW, **kw)


def batch_row(db, batch_id: int) -> dict:
    cur = db.execute("SELECT * FROM audit.load_batch WHERE batch_id = %s", (batch_id,))
    return dict(zip([c.name for c in cur.description], cur.fetchone(), strict=True))


def staged(db, batch_id: int) -> list[tuple]:
    return db.execute(
        """SELECT meter_id, source, interval_start, kwh, quality FROM staging.reading
            WHERE batch_id = %s ORDER BY meter_id, interval_start""",
        (batch_id,),
    ).fetchall()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_long_csv_is_staged_in_utc_with_every_row_accounted(db, landing, bucket):
    f = write(
        landing / "spreadsheets" / "a.csv",
        HEADER
        + "SMR89134A,15/01/2025 00:00,0.25\n"  # winter: London = UTC
        + "SMR89134A,15/01/2025 00:30,0.5\n"
        + "SMR89135A,15/07/2025 18:00,1.5\n"  # summer: BST, 17:00 UTC
        + "SMR89135A,15/07/2025 18:00,1.5\n"  # exact duplicate: dropped and counted
        + "SMR89136A,15/07/2025 18:00,-1\n"  # negative: rejected
        + "BOGUS,15/07/2025 18:00,1\n",  # malformed meter id: rejected
    )
    result = load(f, landing)
    assert (result.rows_read, result.rows_staged, result.rows_rejected, result.rows_duplicate) == (
        6,
        3,
        2,
        1,
    )
    row = batch_row(db, result.batch_id)
    assert row["status"] == "staged"
    assert row["rows_read"] == row["rows_staged"] + row["rows_rejected"] + row["rows_duplicate"]
    assert staged(db, result.batch_id) == [
        ("SMR89134A", "A", utc("2025-01-15T00:00:00+00:00"), Decimal("0.25"), "A"),
        ("SMR89134A", "A", utc("2025-01-15T00:30:00+00:00"), Decimal("0.5"), "A"),
        ("SMR89135A", "A", utc("2025-07-15T17:00:00+00:00"), Decimal("1.5"), "A"),
    ]
    rejects = db.execute(
        "SELECT row_no, reason FROM audit.rejected_row WHERE batch_id = %s ORDER BY row_no",
        (result.batch_id,),
    ).fetchall()
    assert rejects == [(6, Reason.NEGATIVE_READING), (7, Reason.MALFORMED_METER_ID)]


def test_every_row_carries_the_time_it_was_registered(db, landing, bucket):
    f = write(landing / "spreadsheets" / "a.csv", HEADER + "SMR89134A,15/01/2025 00:00,0.25\n")
    before = datetime.now(UTC)
    result = load(f, landing)
    (stamp,) = db.execute(
        "SELECT DISTINCT ingested_at FROM staging.reading WHERE batch_id = %s", (result.batch_id,)
    ).fetchone()
    assert before - (stamp - before) <= stamp <= datetime.now(UTC)
    assert stamp == batch_row(db, result.batch_id)["started_at"]


def test_every_reason_code_is_produced_and_named_with_its_row(db, landing, bucket):
    lines = [
        ",15/01/2025 00:00,1",  # missing meter id
        "SMR-1,15/01/2025 00:00,1",  # malformed
        "SMR89134X,15/01/2025 00:00,1",  # suffix letter that is no source
        "SMR89134A,,1",  # missing timestamp
        "SMR89134A,31/02/2025 10:00,1",  # not a date
        "SMR89134A,30/03/2025 01:30,1",  # does not exist in London (clocks go forward)
        "SMR89134A,01/01/2030 00:00,1",  # future
        "SMR89134A,15/01/2025 00:10,1",  # off the 30-minute grid
        "SMR89134A,15/01/2025 01:00,",  # missing reading
        "SMR89134A,15/01/2025 01:30,abc",  # non-numeric
        "SMR89134A,15/01/2025 02:00,-0.5",  # negative
        "SMR89134A,15/01/2025 02:30,999",  # implausible
        "SMR89134A,15/01/2025 03:00,1.0,Z",  # invalid quality flag
        "SMR89135A,15/01/2025 03:00,1.0",  # conflicting pair
        "SMR89135A,15/01/2025 03:00,2.0",
        "SMR89134A,15/01/2025 03:30,1.0,A,EXPORT",  # no channel like E1 or B1
        "SMR89134A,01/16/2025 00:00,1",  # month/day in a day/month feed
        "SMR89134A,03/04/2025 00:00,1",  # both ways, in a file that has both orders
        "SMR89136A,26/10/2025 01:00,1",  # the repeated hour, no other reading to tell which
        "SMR89134A,01/01/1970 00:00,1",  # a meter clock reset: before the earliest date
    ]
    f = write(
        landing / "spreadsheets" / "faults.csv",
        "meter_id,timestamp,reading_kWh,quality,channel\n"
        + "\n".join(line + "," * (4 - line.count(",")) for line in lines)
        + "\n",
    )
    result = load(f, landing)
    assert result.rows_read == len(lines)
    assert result.rows_staged == 0
    got = dict(
        db.execute(
            "SELECT row_no, reason FROM audit.rejected_row WHERE batch_id = %s ORDER BY row_no",
            (result.batch_id,),
        ).fetchall()
    )
    # every reason a CSV row can have (a malformed record is a packet line: see the packets test)
    assert set(got.values()) == {r.value for r in Reason} - {Reason.MALFORMED_RECORD}
    assert got[2] == Reason.MISSING_METER_ID and got[7] == Reason.NONEXISTENT_LOCAL_TIME
    assert got[15] == got[16] == Reason.CONFLICTING_DUPLICATE
    assert got[17] == Reason.MALFORMED_CHANNEL
    detail = db.execute(
        "SELECT detail FROM audit.rejected_row WHERE batch_id = %s AND row_no = 15",
        (result.batch_id,),
    ).fetchone()[0]
    assert "SMR89135A" in detail and "15, 16" in detail


def _local_day(day: str, times: list[str]) -> str:
    d = datetime.fromisoformat(day)
    return "".join(f"SMR89134A,{d:%d/%m/%Y} {t},0.5\n" for t in times)


def _half_hours() -> list[str]:
    return [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]


def test_clock_change_days_give_46_and_50_intervals(db, landing, bucket):
    spring = _local_day("2025-03-30", _half_hours())  # 01:00 and 01:30 do not exist
    autumn_times = _half_hours()
    autumn_times[4:4] = ["01:00", "01:30"]  # the repeated hour, listed in order
    autumn = _local_day("2025-10-26", autumn_times)
    f = write(landing / "spreadsheets" / "dst.csv", HEADER + spring + autumn)
    result = load(f, landing)
    per_day = dict(
        db.execute(
            """SELECT (interval_start AT TIME ZONE 'Europe/London')::date::text, count(*)
                 FROM staging.reading WHERE batch_id = %s GROUP BY 1""",
            (result.batch_id,),
        ).fetchall()
    )
    assert per_day == {"2025-03-30": 46, "2025-10-26": 50}
    assert result.rows_rejected == 2 and result.rows_duplicate == 0
    bst, gmt = db.execute(
        """SELECT min(interval_start), max(interval_start) FROM staging.reading
            WHERE batch_id = %s AND interval_start >= '2025-10-26 00:00Z'
              AND (interval_start AT TIME ZONE 'Europe/London')::time = '01:30'""",
        (result.batch_id,),
    ).fetchone()
    assert (bst, gmt) == (utc("2025-10-26T00:30:00+00:00"), utc("2025-10-26T01:30:00+00:00"))


def test_same_file_twice_loads_once(db, landing, bucket):
    text = HEADER + "SMR89134A,15/01/2025 00:00,0.25\n"
    first = load(write(landing / "spreadsheets" / "a.csv", text), landing)
    second = load(write(landing / "spreadsheets" / "a-copy.csv", text), landing)
    assert first.batch_id and second.batch_id is None
    assert f"batch {first.batch_id}" in second.skipped_reason
    assert db.execute("SELECT count(*) FROM audit.load_batch").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM staging.reading").fetchone()[0] == 1
    assert sorted(p.name for p in (landing / "processed" / "spreadsheets").iterdir()) == [
        "a-copy.csv",
        "a.csv",
    ]


def test_loaded_file_is_moved_to_processed_and_its_raw_bytes_are_on_s3(
    db, landing, bucket, s3_client
):
    text = HEADER + "SMR89134A,15/01/2025 00:00,0.25\n"
    result = load(write(landing / "spreadsheets" / "a.csv", text), landing)
    sha = hashlib.sha256(text.encode()).hexdigest()
    key = f"raw/spreadsheets/{NOW:%Y/%m/%d}/{sha[:16]}/a.csv"
    assert batch_row(db, result.batch_id)["raw_s3_key"] == key
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode() == text
    assert not (landing / "spreadsheets" / "a.csv").exists()
    assert (landing / "processed" / "spreadsheets" / "a.csv").read_text() == text


def test_two_files_of_one_name_landed_on_one_day_keep_both_raw_copies(
    db, landing, bucket, s3_client
):
    morning = HEADER + "SMR89134A,15/01/2025 00:00,0.25\n"
    evening = HEADER + "SMR89134A,16/01/2025 00:00,0.5\n"
    first = load(write(landing / "spreadsheets" / "a.csv", morning), landing)
    second = load(write(landing / "spreadsheets" / "a.csv", evening), landing)

    keys = [batch_row(db, r.batch_id)["raw_s3_key"] for r in (first, second)]
    assert keys[0] != keys[1] and all(k.endswith("/a.csv") for k in keys)
    copies = [s3_client.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys]
    assert copies == [morning, evening]


def test_an_unreadable_file_goes_to_failed_with_its_error_and_loads_nothing(db, landing, bucket):
    from meterflow import readers

    f = landing / "spreadsheets" / "broken.xlsx"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(readers.UnreadableFile, match=r"broken\.xlsx"):
        load(f, landing)
    failed = landing / "failed" / "spreadsheets"
    assert (failed / "broken.xlsx").exists()
    assert "broken.xlsx" in (failed / "broken.xlsx.error.txt").read_text()
    assert db.execute("SELECT status FROM audit.load_batch").fetchall() == [("failed",)]
    assert db.execute("SELECT count(*) FROM staging.reading").fetchone()[0] == 0


def test_wide_xlsx_unpivots_every_meter_column(db, landing, bucket):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "January"
    meters = [f"SMR{n}B" for n in range(89134, 89155)]
    ws.append(["Timestamp", *meters])
    for i in range(4):
        ws.append(
            [datetime(2025, 1, 15) + timedelta(minutes=30 * i), *[0.1 * (j + 1) for j in range(21)]]
        )
    f = landing / "spreadsheets" / "wide.xlsx"
    f.parent.mkdir(parents=True)
    wb.save(f)
    result = load(f, landing)
    assert (result.rows_read, result.rows_staged) == (84, 84)
    per_meter = db.execute(
        "SELECT count(DISTINCT meter_id), count(*), min(source), max(source) FROM staging.reading"
    ).fetchone()
    assert per_meter == (21, 84, "B", "B")
    last = db.execute(
        "SELECT kwh FROM staging.reading WHERE meter_id = 'SMR89154B' "
        "AND interval_start = '2025-01-15 01:30Z'"
    ).fetchone()[0]
    assert last == Decimal("2.1")


def test_packets_file_from_the_stream_is_staged_at_interval_starts(db, landing, bucket):
    packets = [
        {"id": "SMR89134C", "timestamp": "2025-02-08T00:31:00Z", "reading_kWh": 5.5},
        {"id": "SMR89134C", "timestamp": "2025-02-08T01:01:00Z", "reading_kWh": 4.0},
    ]
    f = write(
        landing / "stream" / "seg-1.jsonl",
        "\n".join(json.dumps(p) for p in packets) + "\nnot json\n",
    )
    result = load(f, landing)
    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (3, 2, 1)
    assert db.execute(
        "SELECT row_no, reason, raw->>'line' FROM audit.rejected_row WHERE batch_id = %s",
        (result.batch_id,),
    ).fetchall() == [(3, Reason.MALFORMED_RECORD, "not a JSON object: not json")]
    assert [r[2] for r in staged(db, result.batch_id)] == [
        utc("2025-02-08T00:00:00+00:00"),
        utc("2025-02-08T00:30:00+00:00"),
    ]


def test_nem12_five_minute_data_is_summed_to_half_hours_in_utc(db, landing, bucket):
    values = ",".join(["0.1"] * 288)
    text = (
        "100,NEM12,202502090000,MDA1,Ret1\n"
        "200,SMR89140C,E1,E1,E1,N1,01009,kWh,5,\n"
        f"300,20250208,{values},A,,,20250209000000,\n"
        "900\n"
    )
    result = load(write(landing / "nem12" / "day.csv", text), landing)
    assert (result.rows_read, result.rows_staged) == (48, 48)
    first, total = db.execute(
        "SELECT min(interval_start), sum(kwh) FROM staging.reading WHERE batch_id = %s",
        (result.batch_id,),
    ).fetchone()
    assert first == utc("2025-02-08T00:00:00+10:00")  # AEST, interval-ending file → starts
    assert total == Decimal("28.8")


def _big_csv(path: Path, rows: int) -> int:
    import numpy as np
    import pandas as pd

    meters = np.array([f"SMR{89134 + i}A" for i in range(210)])  # 150 summer days, no clock change
    n_slots = rows // len(meters)
    stamps = pd.date_range("2025-04-01", periods=n_slots, freq="30min").strftime("%d/%m/%Y %H:%M")
    frame = pd.DataFrame(
        {
            "meter_id": np.tile(meters, n_slots),
            "timestamp": np.repeat(np.asarray(stamps), len(meters)),
            "reading_kWh": np.round(np.random.default_rng(1).random(n_slots * len(meters)), 3),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return len(frame)


def test_a_load_killed_mid_copy_leaves_nothing_and_the_rerun_loads_once(
    db, landing, bucket, warehouse_url
):
    f = landing / "spreadsheets" / "big.csv"
    rows = _big_csv(f, 1_500_000)
    code = (
        "import sys; from pathlib import Path; from meterflow import ingest;"
        f"ingest.load_file(Path({str(f)!r}), landing_dir=Path({str(landing)!r}), "
        "chunk_rows=50_000)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            copying = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY staging.reading%%'"
                " AND datname = current_database()"
            ).fetchone()[0]
            if copying:
                break
            assert proc.poll() is None, "the load finished before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the load never reached COPY")
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert db.execute("SELECT count(*) FROM audit.load_batch").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM staging.reading").fetchone()[0] == 0
    assert f.exists(), "a killed load must leave the file in the landing folder"

    result = ingest.load_file(f, landing_dir=landing)
    assert result.rows_staged == rows
    assert db.execute("SELECT count(*) FROM staging.reading").fetchone()[0] == rows
    assert db.execute("SELECT count(*) FROM audit.load_batch").fetchone()[0] == 1


# --- channels ---------------------------------------------------------------------------------


def staged_channels(db, batch_id: int) -> list[tuple]:
    return db.execute(
        """SELECT meter_id, channel, interval_start, kwh FROM staging.reading
            WHERE batch_id = %s ORDER BY meter_id, channel, interval_start""",
        (batch_id,),
    ).fetchall()


def test_import_and_export_channels_of_one_meter_are_both_staged(db, landing, bucket):
    f = write(
        landing / "spreadsheets" / "solar.csv",
        "meter_id,channel,timestamp,reading_kWh\n"
        "SMR89134A,E1,15/01/2025 12:00,0.4\n"
        "SMR89134A,B1,15/01/2025 12:00,1.2\n"  # same interval, export: not a duplicate
        "SMR89134A,,15/01/2025 12:30,0.3\n",  # no channel named: the feed's default, E1
    )
    result = load(f, landing)
    assert (result.rows_staged, result.rows_rejected, result.rows_duplicate) == (3, 0, 0)
    assert staged_channels(db, result.batch_id) == [
        ("SMR89134A", "B1", utc("2025-01-15T12:00:00+00:00"), Decimal("1.2")),
        ("SMR89134A", "E1", utc("2025-01-15T12:00:00+00:00"), Decimal("0.4")),
        ("SMR89134A", "E1", utc("2025-01-15T12:30:00+00:00"), Decimal("0.3")),
    ]


def test_two_import_channels_with_equal_values_are_both_kept(db, landing, bucket):
    f = write(
        landing / "spreadsheets" / "e1e2.csv",
        "meter_id,channel,timestamp,reading_kWh\n"
        "SMR89134A,E1,15/01/2025 00:00,0.25\n"
        "SMR89134A,E2,15/01/2025 00:00,0.25\n",  # the hot-water channel, same value
    )
    result = load(f, landing)
    assert (result.rows_staged, result.rows_duplicate) == (2, 0)
    assert [r[1] for r in staged_channels(db, result.batch_id)] == ["E1", "E2"]


def test_a_duplicate_is_judged_within_its_channel(db, landing, bucket):
    f = write(
        landing / "spreadsheets" / "dups.csv",
        "meter_id,channel,timestamp,reading_kWh\n"
        "SMR89134A,B1,15/01/2025 00:00,0.25\n"
        "SMR89134A,B1,15/01/2025 00:00,0.25\n"  # exact duplicate of the B1 reading
        "SMR89134A,E1,15/01/2025 00:00,0.5\n"
        "SMR89134A,E1,15/01/2025 00:00,0.7\n",  # conflicting E1 pair: both rejected
    )
    result = load(f, landing)
    assert (result.rows_staged, result.rows_rejected, result.rows_duplicate) == (1, 2, 1)
    assert staged_channels(db, result.batch_id) == [
        ("SMR89134A", "B1", utc("2025-01-15T00:00:00+00:00"), Decimal("0.25"))
    ]
    detail = db.execute(
        "SELECT DISTINCT detail FROM audit.rejected_row WHERE batch_id = %s", (result.batch_id,)
    ).fetchone()[0]
    assert "channel E1" in detail


def test_a_wide_sheet_names_a_meters_channels_in_its_column_headers(db, landing, bucket):
    f = write(
        landing / "spreadsheets" / "wide.csv",
        "timestamp,SMR89134A E1,SMR89134A B1,SMR89135A\n15/01/2025 12:00,0.4,1.1,0.9\n",
    )
    result = load(f, landing)
    assert result.rows_staged == 3
    assert [r[:2] for r in staged_channels(db, result.batch_id)] == [
        ("SMR89134A", "B1"),
        ("SMR89134A", "E1"),
        ("SMR89135A", "E1"),
    ]


def test_a_meters_capacity_and_a_feeds_limit_replace_the_global_one(db, landing, bucket):
    from dataclasses import replace

    from meterflow import feeds

    db.execute(
        "INSERT INTO meter.meter (meter_id, source, capacity_kwh) VALUES ('SMR89140A', 'A', 500)"
    )
    text = (
        HEADER
        + "SMR89140A,15/01/2025 00:00,300\n"  # a C&I site: 300 kWh is within its 500
        + "SMR89140A,15/01/2025 00:30,600\n"  # above its own capacity
        + "SMR89141A,15/01/2025 00:00,300\n"  # no capacity: the limit in force applies
    )
    result = load(write(landing / "spreadsheets" / "ci.csv", text), landing)
    assert result.reasons == {Reason.IMPLAUSIBLE_READING.value: 2}
    details = [
        r[0]
        for r in db.execute(
            "SELECT detail FROM audit.rejected_row WHERE batch_id = %s ORDER BY row_no",
            (result.batch_id,),
        )
    ]
    assert "limit of 500 kWh" in details[0] and "limit of 25 kWh" in details[1]

    roomy = replace(feeds.load_feeds()["spreadsheets"], max_kwh=400.0)
    result = load(
        write(landing / "spreadsheets" / "ci2.csv", text.replace("300", "350")), landing, feed=roomy
    )
    assert result.rows_staged == 2  # 350 within the feed's 400 and the meter's 500
    assert result.reasons == {Reason.IMPLAUSIBLE_READING.value: 1}  # 600 > the meter's 500


def test_a_reactive_channel_is_stored_not_judged_by_the_kwh_limit(db, landing, bucket):
    # 900 kVArh of a Q1 channel is ordinary for a site; the kWh limit (25) is for energy.
    path = write(
        landing / "spreadsheets" / "reactive.csv",
        "meter_id,channel,timestamp,reading_kwh\n"
        "SMR89134A,Q1,15/01/2025 12:00,900\n"
        "SMR89134A,E1,15/01/2025 12:00,900\n",
    )

    result = load(path, landing)

    assert (result.rows_staged, result.rows_rejected) == (1, 1)
    assert db.execute("SELECT channel, kwh FROM staging.reading").fetchall() == [
        ("Q1", Decimal("900"))
    ]
    assert db.execute("SELECT reason FROM audit.rejected_row").fetchall() == [
        ("implausible_reading",)
    ]
