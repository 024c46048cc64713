"""Readers and cleansing on file shapes met in the field, without a database: every row read
comes out either clean (with its UTC interval start and kWh) or rejected with a reason."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterflow import cleansing, feeds, readers

NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
SHIPPED = feeds.load_feeds()


def run(path: Path, feed: feeds.Feed, chunk_rows: int = 1000):
    """(clean rows as (meter, UTC ISO start, kWh, quality), rejects as (row, reason))."""
    import pandas as pd

    cleanser = cleansing.Cleanser(feed, now=NOW, max_kwh=50.0)
    clean, rejects = [], []
    n_read = 0
    results = []
    for raw in readers.read(path, feed, chunk_rows=chunk_rows):
        n_read += len(raw)
        results.append(cleanser.cleanse(raw))
    results.append(cleanser.finish())  # rows held back to the end of the file
    assert sum(len(c) + len(r) for c, r in results) == n_read
    for c, r in results:
        for rec in c.itertuples(index=False):
            start = pd.Timestamp(rec.interval_start).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M")
            clean.append((rec.meter_id, start, round(float(rec.kwh), 6), rec.quality))
        rejects += [(int(n), str(reason)) for n, reason in zip(r.row_no, r.reason, strict=True)]
    return clean, rejects


def test_a_csv_with_bom_semicolons_and_decimal_commas_reads_right(tmp_path):
    feed = dataclasses.replace(SHIPPED["spreadsheets"], delimiter=";", decimal=",")
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffMeter ID;Timestamp;Reading kWh\n"
        "SMR89134A;15/01/2025 00:00;1,25\n"
        "SMR89134A;15/01/2025 00:30;0,5\n".encode()
    )
    clean, rejects = run(path, feed)
    assert clean == [
        ("SMR89134A", "2025-01-15T00:00", 1.25, "A"),
        ("SMR89134A", "2025-01-15T00:30", 0.5, "A"),
    ]
    assert rejects == []


def test_a_csv_not_in_the_feeds_encoding_names_file_and_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(
        "meter_id,timestamp,reading_kWh\nSMR89134A,15/01/2025 00:00,1\n# Zürich\n".encode("latin-1")
    )
    with pytest.raises(readers.UnreadableFile, match=r"latin\.csv: .*encoding"):
        run(path, SHIPPED["spreadsheets"])


def test_excel_serial_dates_and_text_dates_both_read_as_local_times(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["meter_id", "timestamp", "reading_kWh"])
    sheet.append(["SMR89134B", 45672.5, 0.3])  # serial: 2025-01-15 12:00
    sheet.append(["SMR89134B", "15/07/2025 12:00", 0.4])  # text, summer time
    sheet.append(["SMR89134B", datetime(2025, 7, 15, 12, 30), 0.5])  # a date cell
    path = tmp_path / "dates.xlsx"
    book.save(path)
    clean, rejects = run(path, SHIPPED["spreadsheets"])
    assert clean == [
        ("SMR89134B", "2025-01-15T12:00", 0.3, "A"),
        ("SMR89134B", "2025-07-15T11:00", 0.4, "A"),
        ("SMR89134B", "2025-07-15T11:30", 0.5, "A"),
    ]
    assert rejects == []


def test_every_selected_sheet_is_read_and_a_notes_sheet_is_skipped(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    notes = book.active
    notes.title = "Notes"
    notes.append(["exported by the meter vendor's portal"])
    for name, day in (("Jan", "15/01/2025"), ("Feb", "15/02/2025")):
        sheet = book.create_sheet(name)
        sheet.append(["Timestamp", "SMR89134C", "SMR89135C"])
        sheet.append([f"{day} 00:00", 1.0, 2.0])
    path = tmp_path / "sheets.xlsx"
    book.save(path)
    clean, _ = run(path, SHIPPED["spreadsheets"])
    assert sorted(clean) == [
        ("SMR89134C", "2025-01-15T00:00", 1.0, "A"),
        ("SMR89134C", "2025-02-15T00:00", 1.0, "A"),
        ("SMR89135C", "2025-01-15T00:00", 2.0, "A"),
        ("SMR89135C", "2025-02-15T00:00", 2.0, "A"),
    ]


def test_a_workbook_without_the_feeds_columns_names_what_it_found(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Customer", "Address"])
    book.active.append(["Bob", "1 High St"])
    path = tmp_path / "customers.xlsx"
    book.save(path)
    with pytest.raises(readers.UnreadableFile, match=r"customers\.xlsx.*'Customer', 'Address'"):
        run(path, SHIPPED["spreadsheets"])


def _nem12_zip(path: Path, text: str) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inner.csv", text)
    path.write_bytes(buffer.getvalue())
    return path


def test_nem12_zip_in_wh_with_400_ranges_gives_kwh_and_the_ranges_quality(tmp_path):
    values = ",".join(["250"] * 48)  # Wh per half hour
    text = (
        "100,NEM12,202501160000,MDA1,Ret1\n"
        "200,SMR89136C,E1,E1,E1,N1,01009,Wh,30,\n"
        f"300,20250115,{values},V,,,20250116000000,\n"
        "400,1,24,A,,\n"
        "400,25,48,E52,,\n"
        "900\n"
    )
    path = _nem12_zip(tmp_path / "day.zip", text)
    clean, rejects = run(path, SHIPPED["nem12"])
    assert rejects == []
    assert len(clean) == 48
    assert {kwh for _, _, kwh, _ in clean} == {0.25}
    # interval-ending AEST: the first reading ends 00:30 AEST, so starts 14:00 UTC the day before
    assert clean[0][1] == "2025-01-14T14:00"
    assert [q for *_, q in clean] == ["A"] * 24 + ["E"] * 24


def test_nem12_line_that_is_not_a_record_names_its_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("100,NEM12,202501160000,MDA1,Ret1\nhello\n900\n")
    with pytest.raises(readers.UnreadableFile, match=r"bad\.csv.*line 2"):
        run(path, SHIPPED["nem12"])


def test_ambiguous_fall_back_times_are_resolved_by_order_and_nonexistent_ones_rejected(tmp_path):
    rows = [
        "SMR89134A,26/10/2025 01:00,1",  # BST (first time)
        "SMR89134A,26/10/2025 01:30,2",
        "SMR89134A,26/10/2025 01:00,3",  # GMT (second time)
        "SMR89134A,26/10/2025 01:30,4",
        "SMR89134A,30/03/2025 01:30,5",  # does not exist in Europe/London
    ]
    path = tmp_path / "dst.csv"
    path.write_text("meter_id,timestamp,reading_kWh\n" + "\n".join(rows) + "\n")
    clean, rejects = run(path, SHIPPED["spreadsheets"], chunk_rows=2)  # order across chunks
    assert [(start, kwh) for _, start, kwh, _ in clean] == [
        ("2025-10-26T00:00", 1.0),
        ("2025-10-26T00:30", 2.0),
        ("2025-10-26T01:00", 3.0),
        ("2025-10-26T01:30", 4.0),
    ]
    assert rejects == [(6, "nonexistent_local_time")]


def test_wh_feed_readings_become_kwh(tmp_path):
    feed = dataclasses.replace(SHIPPED["spreadsheets"], units="Wh")
    path = tmp_path / "wh.csv"
    path.write_text("meter_id,timestamp,reading_kWh\nSMR89134A,15/01/2025 00:00,1250\n")
    clean, _ = run(path, feed)
    assert clean == [("SMR89134A", "2025-01-15T00:00", 1.25, "A")]


def test_a_fixed_source_feed_takes_meter_ids_without_the_suffix_letter(tmp_path):
    feed = dataclasses.replace(SHIPPED["stream"], source="B", meter_id_pattern=r"^\d{9}$")
    path = tmp_path / "packets.jsonl"
    path.write_text('{"id": 999999999, "timestamp": "2025-02-08T00:31:00Z", "reading_kWh": 5.5}\n')
    clean, rejects = run(path, feed)
    assert clean == [("999999999", "2025-02-08T00:00", 5.5, "A")]
    assert rejects == []
