"""Broken and hostile input (issue 18): every file ends loaded, skipped or failed — never stuck.

Each test drops a real file into the landing folder and loads it with ``ingest.load_file``
against the local PostgreSQL and S3, then looks where a user would: the file's place, its
``.error.txt``, its audit row, what is staged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterflow import ingest, readers

pytestmark = pytest.mark.integration

NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)


def land(landing: Path, name: str, data: bytes, feed: str = "spreadsheets") -> Path:
    path = landing / feed / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def failed_batches(db) -> list[tuple]:
    return db.execute(
        "SELECT file_name, status, error FROM audit.load_batch ORDER BY batch_id"
    ).fetchall()


def test_a_nul_byte_in_a_row_rejects_that_row_not_the_file(db, landing, bucket):
    # PostgreSQL refuses NUL in text and \\u0000 in jsonb: before, the rejects' COPY failed,
    # the load rolled back with no audit row and the file stayed in landing for ever.
    path = land(
        landing,
        "nul.csv",
        b"meter_id,timestamp,reading_kwh\n"
        b"SMR89134A,15/01/2025 12:00,0.5\n"
        b"SMR89134A,15/01/2025 12:30,ab\x00cd\n"
        b"SMR\x0089135A,15/01/2025 12:30,1\n",
    )

    result = ingest.load_file(path, landing_dir=landing, now=NOW)

    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (3, 1, 2)
    rejected = db.execute(
        "SELECT row_no, reason, raw->>'reading', raw->>'meter_id' FROM audit.rejected_row"
        " ORDER BY row_no"
    ).fetchall()
    assert rejected == [
        (3, "non_numeric_reading", "ab\ufffdcd", "SMR89134A"),
        (4, "malformed_meter_id", "1", "SMR\ufffd89135A"),
    ]
    assert (landing / "processed" / "spreadsheets" / "nul.csv").exists()


def test_a_file_that_cannot_be_loaded_fails_once_and_leaves_landing(db, landing, bucket):
    # Any fault of the file itself (here a packet file that is not UTF-8) ends the same way:
    # an audit row, failed/ with the error text, nothing staged, nothing left in landing.
    path = land(landing, "bad.jsonl", b'{"id": "SMR89134A"}\n\xff\xfe\n', feed="stream")

    with pytest.raises(readers.UnreadableFile) as exc:
        ingest.load_file(path, landing_dir=landing, now=NOW)

    assert not path.exists()
    error_text = (landing / "failed" / "stream" / "bad.jsonl.error.txt").read_text()
    assert error_text.startswith("bad.jsonl: ")
    assert str(exc.value) in error_text
    [(name, status, error)] = failed_batches(db)
    assert (name, status) == ("bad.jsonl", "failed")
    assert error == error_text.strip()
    assert db.execute("SELECT count(*) FROM staging.reading").fetchone() == (0,)


def test_hostile_packets_are_rejected_row_by_row(db, landing, bucket):
    lines = [
        '{"id": "SMR89134A", "timestamp": "2025-01-15T12:00:00Z", "reading_kWh": 0.5}',
        '{"id": "SMR89134A", "timestamp": "2025-01-15T12:30:00Z", "reading_kWh": "\\ud800"}',
        '{"id": ' + "[" * 5000 + "]" * 5000 + "}",  # nested beyond reason
        '{"id": ["SMR89134A"], "timestamp": {"t": 1}, "reading_kWh": [1]}',
        '{"id": "SMR89134A", "timestamp": "1970-01-01T00:00:00Z", "reading_kWh": 1}',
        '{"id": "SMR89134A", "timestamp": "2025-01-15T13:00:00Z", "reading_kWh": Infinity}',
    ]
    path = land(landing, "hostile.jsonl", ("\n".join(lines) + "\n").encode(), feed="stream")

    result = ingest.load_file(path, landing_dir=landing, now=NOW)

    assert (result.rows_read, result.rows_staged, result.rows_rejected) == (6, 1, 5)
    reasons = dict(
        db.execute("SELECT row_no, reason FROM audit.rejected_row ORDER BY row_no").fetchall()
    )
    assert reasons[2] == "non_numeric_reading"
    assert reasons[3] == "malformed_record"
    assert reasons[5] == "early_timestamp"
    assert reasons[6] == "non_numeric_reading"
    detail = db.execute("SELECT detail FROM audit.rejected_row WHERE row_no = 5").fetchone()[0]
    assert "before the earliest date 2000-01-01 (setting MF_EARLIEST_DATE)" in detail
    partitions = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'meter.readings_a'::regclass"
    ).fetchone()
    assert partitions == (0,)  # no partition for every month since 1970


def test_a_workbook_date_of_year_0205_is_one_rejected_row(db, landing, bucket):
    from datetime import datetime as dt

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["meter_id", "timestamp", "reading_kwh"])
    sheet.append(["SMR89134A", dt(2025, 1, 15, 12, 0), 1.0])
    sheet.append(["SMR89134A", dt(205, 1, 15, 12, 30), 1.0])  # a typed 0205
    path = landing / "spreadsheets" / "typo.xlsx"
    path.parent.mkdir(parents=True)
    workbook.save(path)

    result = ingest.load_file(path, landing_dir=landing, now=NOW)

    assert (result.rows_staged, result.rows_rejected) == (1, 1)
    assert db.execute("SELECT row_no, reason FROM audit.rejected_row").fetchall() == [
        (3, "unparseable_timestamp")
    ]


def test_a_failed_file_can_be_fixed_and_landed_again(db, landing, bucket):
    bad = land(landing, "fix.jsonl", b"\xff\xfe not utf-8\n", feed="stream")
    with pytest.raises(readers.UnreadableFile):
        ingest.load_file(bad, landing_dir=landing, now=NOW)

    good = land(
        landing,
        "fix.jsonl",
        b'{"id": "SMR89134A", "timestamp": "2025-01-15T12:00:00Z", "reading_kWh": 1}\n',
        feed="stream",
    )
    result = ingest.load_file(good, landing_dir=landing, now=NOW)

    assert (result.status, result.rows_staged) == ("staged", 1)
    assert (landing / "processed" / "stream" / "fix.jsonl").exists()


def test_the_warehouse_unreachable_leaves_the_file_in_landing_for_the_retry(
    landing, bucket, monkeypatch
):
    # A service fault is not the file's: nothing is recorded, the file waits for the retry.
    import psycopg

    monkeypatch.setenv(
        "AIRFLOW_CONN_MF_NOWHERE", "postgresql://meterflow@127.0.0.1:9/meters?connect_timeout=2"
    )
    path = land(
        landing, "ok.csv", b"meter_id,timestamp,reading_kwh\nSMR89134A,15/01/2025 12:00,1\n"
    )

    with pytest.raises(psycopg.OperationalError):
        ingest.load_file(path, landing_dir=landing, now=NOW, conn_id="mf_nowhere")

    assert path.exists()
    assert not (landing / "failed").exists()


def test_a_backlog_is_taken_oldest_first_a_run_at_a_time(landing, monkeypatch):
    # More waiting files than Airflow maps in one run (1,024) wedged list_files on every run.
    import os

    monkeypatch.setenv("MF_MAX_FILES_PER_RUN", "3")
    paths = [land(landing, f"seg-{n}.jsonl", b"", feed="stream") for n in range(5)]
    for age, path in zip([50, 10, 40, 20, 30], paths, strict=True):
        os.utime(path, (NOW.timestamp() - age, NOW.timestamp() - age))

    first = ingest.landed_files(landing)

    assert [p.name for p in first] == ["seg-0.jsonl", "seg-2.jsonl", "seg-4.jsonl"]
    for path in first:
        path.unlink()  # loaded and moved away by this run
    assert [p.name for p in ingest.landed_files(landing)] == ["seg-3.jsonl", "seg-1.jsonl"]


def test_a_file_no_feed_takes_is_named_in_the_log_and_left_alone(landing, caplog):
    stray = land(landing, "readings.pdf", b"%PDF-1.4")

    assert ingest.landed_files(landing) == []

    assert stray.exists()
    assert f"{stray}: no feed in feeds.yaml takes this file" in caplog.text


def test_a_file_still_being_written_is_left_for_the_next_run(landing, monkeypatch):
    import threading
    import time

    monkeypatch.setenv("MF_SETTLE_SECONDS", "1.5")
    done = land(landing, "done.csv", b"meter_id,timestamp,reading_kwh\n")
    growing = land(landing, "growing.csv", b"meter_id,timestamp,reading_kwh\n")
    stop = threading.Event()

    def upload() -> None:  # a sender still copying the file in
        while not stop.wait(0.2):
            with growing.open("ab") as fh:
                fh.write(b"SMR89134A,15/01/2025 12:00,0.5\n")

    writer = threading.Thread(target=upload)
    writer.start()
    try:
        started = time.monotonic()
        taken = ingest.landed_files(landing)
        waited = time.monotonic() - started
    finally:
        stop.set()
        writer.join()

    assert taken == [done]  # the complete file, after watching both for the settle time
    assert waited >= 1.0
    assert growing.exists()


def test_a_file_changed_during_its_load_is_not_kept_and_stays_for_a_retry(
    db, landing, bucket, monkeypatch
):
    from meterflow import cleansing

    path = land(
        landing, "late.csv", b"meter_id,timestamp,reading_kwh\nSMR89134A,15/01/2025 12:00,1\n"
    )
    real_cleanse = cleansing.Cleanser.cleanse

    def cleanse_while_the_sender_appends(self, raw):
        with path.open("ab") as fh:  # the rest of the upload arrives mid-load
            fh.write(b"SMR89134A,15/01/2025 12:30,2\n")
        return real_cleanse(self, raw)

    monkeypatch.setattr(cleansing.Cleanser, "cleanse", cleanse_while_the_sender_appends)

    with pytest.raises(ingest.FileChanged):
        ingest.load_file(path, landing_dir=landing, now=NOW)

    assert path.exists()
    assert db.execute("SELECT count(*) FROM audit.load_batch").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM staging.reading").fetchone() == (0,)


def test_a_tiny_workbook_claiming_a_huge_sheet_fails_before_it_is_read(db, landing, bucket):
    # One cell at XFD1048576: the reader would ask for 1.7e10 cells and the worker would die.
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["meter_id", "timestamp", "reading_kwh"])
    sheet.append(["SMR89134A", "15/01/2025 12:00", 1])
    sheet["XFD1048576"] = "x"
    path = landing / "spreadsheets" / "tiny.xlsx"
    path.parent.mkdir(parents=True)
    workbook.save(path)
    assert path.stat().st_size < 10_000

    with pytest.raises(readers.UnreadableFile) as exc:
        ingest.load_file(path, landing_dir=landing, now=NOW)

    assert "tiny.xlsx: xl/worksheets/sheet1.xml spans 1,048,576 rows x 16,384 columns" in str(
        exc.value
    )
    assert "MF_MAX_SHEET_CELLS" in str(exc.value)
    assert (landing / "failed" / "spreadsheets" / "tiny.xlsx.error.txt").exists()


def test_a_workbook_that_inflates_past_the_cap_fails_naming_the_setting(db, landing, monkeypatch):
    import zipfile

    monkeypatch.setenv("MF_MAX_INFLATED_MB", "1")
    path = landing / "spreadsheets" / "bomb.xlsx"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b" " * (3 << 20))  # 3 MB of blanks, ~3 KB

    with pytest.raises(readers.UnreadableFile) as exc:
        ingest.load_file(path, landing_dir=landing, now=NOW, upload_raw=False)

    assert "bomb.xlsx: inflates to 3 MB, above the limit of 1 MB (setting MF_MAX_INFLATED_MB)" in (
        str(exc.value)
    )


def test_a_wide_csv_is_read_in_chunks_of_cells_not_lines(tmp_path):
    # 1,500 meter columns chunked by lines made 100k-line chunks of 150M cells (2.1 GB).
    from meterflow import feeds
    from meterflow.readers import tabular

    meters = [f"SMR{89000 + n:05d}A" for n in range(1500)]
    lines = ["timestamp," + ",".join(meters)]
    lines += [f"15/01/2025 {h:02d}:00," + ",".join(["0.5"] * 1500) for h in range(20)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")

    chunks = list(tabular.read_csv(path, feeds.load_feeds()["spreadsheets"], chunk_rows=6000))

    assert sum(len(c) for c in chunks) == 20 * 1500  # every reading
    assert max(len(c) for c in chunks) <= 6000  # no chunk above the budget of cells
    assert chunks[0]["row_no"].iloc[0] == 2 and chunks[-1]["row_no"].iloc[-1] == 21


def test_files_that_failed_long_ago_move_to_s3_with_their_error_text(landing, bucket, s3_client):
    import os

    failed = landing / "failed" / "spreadsheets"
    failed.mkdir(parents=True)
    old, recent = failed / "old.csv", failed / "recent.csv"
    for path in (old, recent):
        path.write_bytes(b"not,a,meter,file\n")
        path.with_name(path.name + ".error.txt").write_text(f"{path.name}: row 1: no header\n")
    month_ago = NOW.timestamp() - 40 * 86400
    os.utime(old, (month_ago, month_ago))

    assert ingest.shelve_failed(landing, older_than_days=30) == 1

    assert not old.exists() and not (failed / "old.csv.error.txt").exists()
    assert recent.exists() and (failed / "recent.csv.error.txt").exists()
    keys = sorted(
        o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="failed/")["Contents"]
    )
    assert len(keys) == 2 and keys[0].endswith("-old.csv") and keys[1].endswith(".error.txt")
    assert keys[0].startswith(
        f"failed/spreadsheets/{datetime.fromtimestamp(month_ago, UTC):%Y/%m/%d}/"
    )
    body = s3_client.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert body == b"not,a,meter,file\n"


def test_a_dollar_sign_in_a_region_name_is_drawn_as_it_is(tmp_path):
    # "$\nosuchcommand$" was parsed as mathtext and stopped the region chart (and the PDF).
    from datetime import date

    from meterflow import charts

    names = ["North $\\nosuchcommand$", "Mill $5 $"]
    rows = [(names[0], "A", 10.0, None), (names[1], "B", 3.0, None)]

    fig = charts.regions_chart(rows, date(2025, 1, 1), date(2025, 1, 7))
    path = charts.save(fig, tmp_path / "regions.png")

    assert path.stat().st_size > 0
    assert sorted(t.get_text() for t in fig.axes[0].get_xticklabels()) == sorted(names)
