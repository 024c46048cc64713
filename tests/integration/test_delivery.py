"""Delivery emails reach the sponsor through the real local SMTP server, exactly once.

Every test sends to its own address and reads the real messages back from the Maildir of the
local SMTP server (var/outbox/new) with the email stdlib.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import io
import json
import re
import socket
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from meterflow import delivery

pytestmark = pytest.mark.integration

DAY = date(2025, 1, 15)  # January: London local time is UTC
METERS = {"A": ["SMR89134A", "SMR89135A"], "B": ["SMR89134B"], "C": ["SMR89134C", "SMR89140C"]}


# --------------------------------------------------------------------------- helpers


def mails_to(outbox: Path, address: str) -> list[email.message.EmailMessage]:
    """Every message in the Maildir addressed to ``address`` (sent before this call returned:
    the SMTP server writes the file before it answers 250)."""
    out = []
    for path in sorted((outbox / "new").glob("*")):
        raw = path.read_bytes()
        if address.encode() not in raw[:4000]:
            continue
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if address in str(msg["To"]):
            out.append(msg)
    return out


def insert_batch(
    db,
    *,
    status: str,
    file_name: str,
    rows: int = 0,
    rejected: int = 0,
    started_at: datetime | None = None,
    error: str | None = None,
) -> int:
    promoted = status == "promoted"
    return db.execute(
        """INSERT INTO audit.load_batch (feed, file_name, file_path, sha256, size_bytes, status,
               rows_read, rows_staged, rows_rejected, rows_promoted, rows_superseded,
               rows_kept, promoted_at, started_at, finished_at, error)
           VALUES ('spreadsheets', %s, %s, %s, 100, %s, %s, %s, %s, %s, %s, %s, %s,
                   %s, %s, %s)
           RETURNING batch_id""",
        (
            file_name,
            f"/landing/spreadsheets/{file_name}",
            uuid.uuid4().hex * 2,
            status,
            rows + rejected,
            rows,
            rejected,
            rows if promoted else None,
            0 if promoted else None,
            0 if promoted else None,
            datetime.now(UTC) if promoted else None,
            started_at or datetime.now(UTC),
            datetime.now(UTC),
            error,
        ),
    ).fetchone()[0]


def insert_readings(
    db,
    batch_id: int,
    source: str,
    meter: str,
    start: datetime,
    n: int,
    kwh=lambda i: 0.1 + (i % 48) / 100,
    channel: str = "E1",
) -> None:
    table = {"A": "meter.readings_a", "B": "meter.readings_b", "C": "meter.readings_c"}[source]
    db.execute(
        "SELECT meter.ensure_partitions(%s::regclass, %s, %s)",
        (table, start, start + timedelta(minutes=30 * n)),
    )
    with db.cursor().copy(
        f"COPY {table} (meter_id, channel, interval_start, kwh, quality, batch_id, ingested_at) "
        "FROM STDIN"
    ) as copy:
        for i in range(n):
            copy.write_row(
                (
                    meter,
                    channel,
                    start + timedelta(minutes=30 * i),
                    round(kwh(i), 3),
                    "A",
                    batch_id,
                    datetime.now(UTC),
                )
            )


@pytest.fixture
def warehouse_day(db):
    """Readings of 15 Jan 2025 for five meters (SMR89135A stops at 10:00), a reading on each
    neighbouring day, one promoted, one GX-rejected and one unreadable batch."""
    start = datetime(2025, 1, 15, tzinfo=UTC)
    good = insert_batch(db, status="promoted", file_name="jan15.csv", rows=5 * 48, rejected=3)
    db.execute(
        "INSERT INTO audit.rejected_row (batch_id, row_no, reason, raw) VALUES "
        "(%s, 7, 'non_numeric_reading', '{}'), (%s, 9, 'non_numeric_reading', '{}'), "
        "(%s, 12, 'negative_reading', '{}')",
        (good, good, good),
    )
    expected = {}
    for source, meters in METERS.items():
        for meter in meters:
            n = 20 if meter == "SMR89135A" else 48
            insert_readings(db, good, source, meter, start, n)
            expected.setdefault(source, set()).update(
                (meter, start + timedelta(minutes=30 * i)) for i in range(n)
            )
    insert_readings(db, good, "A", "SMR89134A", start - timedelta(minutes=30), 1)
    insert_readings(db, good, "B", "SMR89134B", start + timedelta(days=1), 1)
    bad = insert_batch(
        db,
        status="rejected",
        file_name="jan15_spikes.csv",
        rows=2,
        started_at=start + timedelta(hours=12),
    )
    db.execute(
        """INSERT INTO audit.quality_result (batch_id, suite, success, verdict,
               expectations_evaluated, expectations_failed, failures, started_at)
           VALUES (%s, 'readings', false, 'rejected', 9, 1, %s, now())""",
        (
            bad,
            json.dumps(
                [
                    {
                        "check": "kwh_plausible",
                        "severity": "critical",
                        "column": "kwh",
                        "expectation": "expect_column_values_to_be_between",
                        "unexpected_count": 2,
                        "sample": [99.0],
                    }
                ]
            ),
        ),
    )
    insert_batch(
        db,
        status="failed",
        file_name="broken.xlsx",
        started_at=start + timedelta(hours=13),
        error="broken.xlsx: not a workbook (zip header missing)",
    )
    return expected


@pytest.fixture
def sponsor(monkeypatch, tmp_path) -> str:
    """A fresh recipient address for this test, reports written under tmp_path."""
    address = f"sponsor-{uuid.uuid4().hex[:10]}@example.net"
    monkeypatch.setenv("MF_REPORTS_DIR", str(tmp_path / "reports"))
    return address


def plan_for(address: str, **kw) -> delivery.Plan:
    return delivery.make_plan({"period": DAY.isoformat(), "recipients": address, **kw})


def attachments(msg) -> dict[str, bytes]:
    return {p.get_filename(): p.get_content() for p in msg.iter_attachments()}


# --------------------------------------------------------------------------- the email


def test_the_email_has_recipient_subject_html_and_text_parts_and_inline_charts(
    warehouse_day, outbox, sponsor
):
    result = delivery.deliver(plan_for(sponsor))

    assert result["status"] == "sent"
    (msg,) = mails_to(outbox, sponsor)
    assert msg["To"] == sponsor
    assert msg["Subject"] == (
        "meterflow: smart-meter readings, Wed 15 Jan 2025 — 3 data-quality issues"
    )
    assert msg["Message-ID"] == result["message_id"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "SMR89135A (source A), last reading 15 Jan 09:30" in text
    assert "A: 2 meters, 68 readings" in text
    for needle in (
        "Wed 15 Jan 2025",
        "jan15_spikes.csv",
        "broken.xlsx: not a workbook",
        "kwh_plausible on kwh (2 rows)",
        "SMR89135A",
        "non numeric reading 2",
    ):
        assert needle in html, needle
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    images = {
        p["Content-ID"].strip("<>"): p.get_content()
        for p in related.iter_parts()
        if p.get_content_type() == "image/png"
    }
    referenced = set(re.findall(r'src="cid:([^"]+)"', html))
    assert referenced and referenced == set(images)
    assert all(png.startswith(b"\x89PNG") for png in images.values())


def test_the_workbook_has_sheets_a_b_c_with_exactly_the_periods_rows(
    warehouse_day, outbox, sponsor
):
    from openpyxl import load_workbook

    delivery.deliver(plan_for(sponsor))

    (msg,) = mails_to(outbox, sponsor)
    files = attachments(msg)
    wb = load_workbook(io.BytesIO(files["meterflow_20250115.xlsx"]), read_only=True)
    assert wb.sheetnames[:3] == ["A", "B", "C"]
    for source in "ABC":
        rows = list(wb[source].iter_rows(values_only=True))
        assert rows[0][:6] == (
            "meter_id",
            "channel",
            "kind",
            "interval_start_utc",
            "interval_start_local",
            "kwh",
        )
        assert {(r[1], r[2]) for r in rows[1:]} == {("E1", "import")}
        got = {(r[0], r[3].replace(tzinfo=UTC)) for r in rows[1:]}
        assert got == warehouse_day[source], source
        assert len(rows) - 1 == len(warehouse_day[source])


def test_the_pdf_has_a_summary_page_and_pages_with_the_charts(warehouse_day, outbox, sponsor):
    delivery.deliver(plan_for(sponsor))

    (msg,) = mails_to(outbox, sponsor)
    pdf = attachments(msg)["meterflow_20250115.pdf"]
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    images = len(re.findall(rb"/Subtype\s*/Image", pdf))
    assert pages == 2  # tables, then the two charts of a one-day period
    assert images >= 2


def test_a_rerun_sends_nothing_new_and_force_sends_again(warehouse_day, outbox, sponsor, db):
    first = delivery.deliver(plan_for(sponsor))
    again = delivery.deliver(plan_for(sponsor))
    assert (first["status"], again["status"]) == ("sent", "skipped")
    assert "already sent" in again["detail"]
    assert len(mails_to(outbox, sponsor)) == 1

    forced = delivery.deliver(plan_for(sponsor, force=True))
    assert forced["status"] == "sent" and forced["send_no"] == 2
    assert len(mails_to(outbox, sponsor)) == 2
    assert db.execute(
        "SELECT status, send_no, forced FROM audit.delivery WHERE recipients = %s ORDER BY id",
        (sponsor,),
    ).fetchall() == [("sent", 1, False), ("sent", 2, True)]


def test_new_data_for_the_period_is_a_new_deliverable(warehouse_day, outbox, sponsor, db):
    delivery.deliver(plan_for(sponsor))
    insert_readings(db, 1, "B", "SMR89150B", datetime(2025, 1, 15, 6, tzinfo=UTC), 4)
    assert delivery.deliver(plan_for(sponsor))["status"] == "sent"
    assert len(mails_to(outbox, sponsor)) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_with_smtp_down_the_send_fails_clearly_and_once_it_is_back_one_email_arrives(
    warehouse_day, sponsor, monkeypatch, tmp_path, db
):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    port = _free_port()  # nothing listens here yet: the SMTP server is "stopped"
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {
                    "disable_tls": True,
                    "disable_ssl": True,
                    "timeout": 5,
                    "retry_limit": 0,
                    "from_email": "meterflow@localhost",
                },
            }
        ),
    )
    for _try in range(2):
        with pytest.raises(delivery.DeliveryError) as err:
            delivery.deliver(plan_for(sponsor))
        assert f"through SMTP connection smtp_default (127.0.0.1:{port})" in str(err.value)
        assert "ConnectionRefusedError" in str(err.value) and "Nothing was sent" in str(err.value)

    maildir = tmp_path / "maildir"
    server = Controller(Mailbox(str(maildir)), hostname="127.0.0.1", port=port)
    server.start()
    try:
        assert delivery.deliver(plan_for(sponsor))["status"] == "sent"
        assert delivery.deliver(plan_for(sponsor))["status"] == "skipped"
    finally:
        server.stop()
    assert len(mails_to(maildir, sponsor)) == 1
    assert db.execute(
        "SELECT status FROM audit.delivery WHERE recipients = %s ORDER BY id", (sponsor,)
    ).fetchall() == [("failed",), ("failed",), ("sent",)]


def test_a_send_that_died_after_claiming_is_not_repeated_unless_forced(
    warehouse_day, outbox, sponsor, db
):
    d = delivery.build(plan_for(sponsor))
    db.execute(
        """INSERT INTO audit.delivery (period_start, period_end, recipients, content_hash, status,
               run_id) VALUES (%s, %s, %s, %s, 'sending', 'manual__killed')""",
        (d.period.start, d.period.end, d.recipients, d.content_hash),
    )
    with pytest.raises(delivery.DeliveryError, match="never recorded as sent or failed"):
        delivery.send(d)
    assert mails_to(outbox, sponsor) == []
    assert delivery.deliver(plan_for(sponsor, force=True))["status"] == "sent"
    assert len(mails_to(outbox, sponsor)) == 1


def test_an_export_over_the_limit_is_sent_as_a_link_that_downloads_from_s3(
    warehouse_day, outbox, sponsor, bucket, monkeypatch
):
    monkeypatch.setenv("MF_ATTACHMENT_LIMIT_MB", "0.05")  # charts fit, the workbook does not

    result = delivery.deliver(plan_for(sponsor))

    (msg,) = mails_to(outbox, sponsor)
    how = {a["name"]: a["how"] for a in result["attachments"]}
    assert how["meterflow_20250115.xlsx"] == "link"
    assert "meterflow_20250115.xlsx" not in attachments(msg)
    html = msg.get_body(("html",)).get_content()
    url = re.search(r'href="([^"]+meterflow_20250115\.xlsx[^"]*)"', html).group(1)
    url = url.replace("&amp;", "&")
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read()
    assert body.startswith(b"PK")  # the workbook itself
    local = Path(delivery.config.get("reports_dir")) / "delivery" / "20250115"
    assert body == (local / "meterflow_20250115.xlsx").read_bytes()


def test_a_source_over_the_sheet_limit_goes_as_csv_gz(warehouse_day, outbox, sponsor, monkeypatch):
    from openpyxl import load_workbook

    monkeypatch.setattr(delivery, "EXCEL_MAX_ROWS", 60)  # A (68 rows) no longer fits, B does

    delivery.deliver(plan_for(sponsor))

    (msg,) = mails_to(outbox, sponsor)
    files = attachments(msg)
    wb = load_workbook(io.BytesIO(files["meterflow_20250115.xlsx"]), read_only=True)
    assert "meterflow_20250115_A.csv.gz" in next(wb["A"].iter_rows(values_only=True))[0]
    assert len(list(wb["B"].iter_rows())) == 49
    lines = gzip.decompress(files["meterflow_20250115_A.csv.gz"]).decode().splitlines()
    assert lines[0].startswith("meter_id,channel,kind,interval_start_utc")
    assert len(lines) == 1 + 68


def test_report_charts_from_the_asset_event_are_included(warehouse_day, outbox, sponsor, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    chart = tmp_path / "peak_means_A.png"
    fig.savefig(chart)
    plt.close(fig)
    plan = delivery.make_plan(
        {"recipients": sponsor},
        [
            {
                "period_start": "2025-01-15",
                "period_end": "2025-01-15",
                "files": [str(chart), str(tmp_path / "gone.png")],
            }
        ],
        run_type="asset_triggered",
    )
    assert (plan.period_start, plan.period_end) == ("2025-01-15", "2025-01-15")

    delivery.deliver(plan)

    (msg,) = mails_to(outbox, sponsor)
    html = msg.get_body(("html",)).get_content()
    assert 'src="cid:peak_means_A@meterflow"' in html
    cids = [p["Content-ID"] for p in msg.walk() if p.get_content_type() == "image/png"]
    assert "<peak_means_A@meterflow>" in cids


def test_without_a_period_a_manual_run_covers_the_newest_day_of_data(warehouse_day, sponsor):
    d = delivery.build(delivery.make_plan({"recipients": sponsor}))
    assert (d.period.start, d.period.end) == (date(2025, 1, 16), date(2025, 1, 16))
    assert [s["readings"] for s in d.summary["sources"]] == [0, 1, 0]


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("day", "2025-03-09", "2025-03-09"),
        ("week", "2025-03-03", "2025-03-09"),
        ("month", "2025-02-01", "2025-02-28"),
        ("2025-01-15", "2025-01-15", "2025-01-15"),
        ("2024-02", "2024-02-01", "2024-02-29"),
        ("2025-W03", "2025-01-13", "2025-01-19"),
        ("2025-01-01..2025-01-31", "2025-01-01", "2025-01-31"),
        ("2025-01-01 to 2025-02", "2025-01-01", "2025-02-28"),
    ],
)
def test_periods_are_read_as_a_person_means_them(text, start, end):
    p = delivery.parse_period(text, today=date(2025, 3, 10))
    assert (p.start.isoformat(), p.end.isoformat()) == (start, end)


def test_a_period_that_cannot_be_read_names_the_accepted_forms():
    with pytest.raises(ValueError, match=r"YYYY-MM-DD\.\.YYYY-MM-DD"):
        delivery.parse_period("fortnight", today=date(2025, 3, 10))


def test_a_clock_change_day_spans_25_hours_in_utc():
    lo, hi = delivery.Period(date(2025, 10, 26), date(2025, 10, 26)).bounds(
        delivery.ZoneInfo("Europe/London")
    )
    assert hi - lo == timedelta(hours=25)


def test_the_plan_of_a_scheduled_run_is_yesterday_for_the_sponsor(monkeypatch):
    monkeypatch.setenv("MF_SPONSOR_EMAIL", "Bob@BTL.com; ops@btl.com")
    plan = delivery.make_plan(
        {}, run_type="scheduled", run_after=datetime(2025, 6, 2, 6, 0, tzinfo=UTC)
    )
    assert (plan.period_start, plan.period_end) == ("2025-06-01", "2025-06-01")
    assert plan.recipients == ["bob@btl.com", "ops@btl.com"]
    assert plan.formats == ["xlsx", "pdf"]


def test_a_report_event_ending_at_midnight_is_read_as_exclusive():
    plan = delivery.make_plan(
        {"recipients": "x@example.net"},
        [
            {
                "period_start": "2025-01-13T00:00:00+00:00",
                "period_end": "2025-01-20T00:00:00+00:00",
            },
            {"batch_ids": [1, 2]},
            "not a mapping",
        ],
        run_type="asset_triggered",
    )
    assert (plan.period_start, plan.period_end) == ("2025-01-13", "2025-01-19")


def test_every_emailed_chart_says_its_unit_on_the_value_axis(
    warehouse_day, outbox, sponsor, monkeypatch
):
    drawn = []
    real_png = delivery._png

    def keep_labels(fig):  # the figure is closed once it is a PNG: read its axes first
        drawn.append((fig.axes[0].get_title(loc="left"), fig.axes[0].get_ylabel()))
        return real_png(fig)

    monkeypatch.setattr(delivery, "_png", keep_labels)
    assert delivery.deliver(plan_for(sponsor))["status"] == "sent"

    assert drawn == [
        ("Half-hourly kWh, all meters", "kWh per half hour"),
        ("Mean kWh per meter and half hour, peak vs off-peak", "kWh per meter and half hour"),
    ]


# --------------------------------------------------------------------------- channels


def e1(i: int) -> float:
    return round(0.1 + (i % 48) / 100, 3)  # insert_readings' default kWh


@pytest.fixture
def solar_day(warehouse_day, db):
    """SMR89134A of the warehouse day also has E2 (0.2 kWh from 00:00 to 06:30), rooftop solar
    B1 (0.5 kWh from 10:00 to 14:30, 0 otherwise) and reactive Q1 (0.3 kVArh every half hour)."""
    start = datetime(2025, 1, 15, tzinfo=UTC)
    insert_readings(db, 1, "A", "SMR89134A", start, 14, kwh=lambda i: 0.2, channel="E2")
    insert_readings(
        db,
        1,
        "A",
        "SMR89134A",
        start,
        48,
        kwh=lambda i: 0.5 if 20 <= i < 30 else 0.0,
        channel="B1",
    )
    insert_readings(db, 1, "A", "SMR89134A", start, 48, kwh=lambda i: 0.3, channel="Q1")
    return warehouse_day


def test_the_email_reports_import_with_export_beside_it_and_no_reactive_kwh(
    solar_day, outbox, sponsor
):
    d = delivery.build(plan_for(sponsor))

    a = d.summary["sources"][0]
    # import: both meters' E1 (48 and 20 half hours) plus SMR89134A's E2; B1 and Q1 are not in it
    imported = sum(e1(i) for i in range(48)) + sum(e1(i) for i in range(20)) + 14 * 0.2
    assert a["kwh"] == pytest.approx(imported)
    assert (a["export_kwh"], a["export_meters"], a["non_energy_readings"]) == (5.0, 1, 48)
    assert a["readings"] == 68 + 14 + 48 + 48  # every channel is delivered
    # E1 and E2 of one half hour are one half hour of the meter: 68 of 2 x 48 expected
    assert a["completeness"] == round(68 / 96, 4)
    night = [e1(i) + (0.2 if i < 14 else 0) for i in range(48) if not 32 <= i < 38]
    night += [e1(i) for i in range(20)]
    assert a["offpeak_mean"] == pytest.approx(sum(night) / len(night), abs=1e-4)
    assert [s["export_kwh"] for s in d.summary["sources"][1:]] == [None, None]

    delivery.send(d)
    (msg,) = mails_to(outbox, sponsor)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert f"A: 2 meters, 178 readings, {imported:,.1f} kWh import, 5.0 kWh export (1 meter)" in (
        text
    )
    assert "B: 1 meters, 48 readings, 16.1 kWh import; peak" in text  # B has no export
    assert "48 readings of non-energy channels" in text
    assert "Export kWh" in html and ">5.0<" in html


def test_the_workbook_carries_every_channel_with_its_kind_and_the_export_total(
    solar_day, outbox, sponsor
):
    from openpyxl import load_workbook

    delivery.deliver(plan_for(sponsor))

    (msg,) = mails_to(outbox, sponsor)
    wb = load_workbook(io.BytesIO(attachments(msg)["meterflow_20250115.xlsx"]), read_only=True)
    rows = list(wb["A"].iter_rows(values_only=True))
    per_channel: dict[tuple, list[float]] = {}
    for meter, channel, kind, *_times, kwh, _q, _b, _at in rows[1:]:
        per_channel.setdefault((meter, channel, kind), []).append(kwh)
    assert {k: len(v) for k, v in per_channel.items()} == {
        ("SMR89134A", "B1", "export"): 48,
        ("SMR89134A", "E1", "import"): 48,
        ("SMR89134A", "E2", "import"): 14,
        ("SMR89134A", "Q1", "non_energy"): 48,
        ("SMR89135A", "E1", "import"): 20,
    }
    assert sum(per_channel[("SMR89134A", "B1", "export")]) == pytest.approx(5.0)
    summary = list(wb["Summary"].iter_rows(values_only=True))
    header = summary[3]
    a = dict(zip(header, summary[4], strict=False))
    assert (a["export kWh"], a["meters exporting"], a["non-energy readings"]) == (5.0, 1, 48)


def test_the_emailed_charts_draw_export_beside_import(solar_day, outbox, sponsor, monkeypatch):
    drawn = {}
    real_png = delivery._png

    def keep_lines(fig):
        ax = fig.axes[0]
        drawn[ax.get_title(loc="left")] = {
            line.get_label(): list(line.get_ydata()) for line in ax.get_lines()
        }
        return real_png(fig)

    monkeypatch.setattr(delivery, "_png", keep_lines)
    delivery.deliver(plan_for(sponsor))

    lines = drawn["Half-hourly kWh, all meters"]
    assert {"A import", "A export", "B import", "C import"} <= set(lines)
    # the solar shape: export only from 10:00 to 14:30, 0.5 kWh per half hour
    assert [round(v, 3) for v in lines["A export"]] == [
        0.5 if 20 <= i < 30 else 0 for i in range(48)
    ]
    # and the import line is E1 + E2 of both meters, never B1 or Q1
    assert lines["A import"][0] == pytest.approx(e1(0) * 2 + 0.2)


# --------------------------------------------------------------------------- unknown outcome


class _BreaksAfterData:
    """A real SMTP server (aiosmtpd) that stores every message it receives in a Maildir, then,
    for the deliverables (they carry X-Meterflow-Content-Hash) while ``faulty``, never answers
    the end of the data: it drops the connection, or waits past the client's timeout."""

    def __init__(self, maildir: Path, fault: str) -> None:
        from aiosmtpd.handlers import Mailbox

        self.mailbox = Mailbox(str(maildir))
        self.fault = fault
        self.faulty = True

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        answer = await self.mailbox.handle_DATA(server, session, envelope)  # stored: it arrived
        if self.faulty and b"X-Meterflow-Content-Hash" in envelope.original_content:
            if self.fault == "dropped":
                server.transport.close()
            else:
                await asyncio.sleep(4)  # the connection's timeout below is 2 s
        return answer


@pytest.mark.parametrize("fault", ["dropped", "timeout"])
def test_an_smtp_failure_after_the_data_is_unknown_not_retried_and_alerted_to_the_team(
    fault, warehouse_day, sponsor, monkeypatch, tmp_path, db
):
    from aiosmtpd.controller import Controller

    team = f"data-team-{uuid.uuid4().hex[:8]}@example.net"
    monkeypatch.setenv("MF_ALERT_EMAIL", team)
    maildir = tmp_path / "maildir"
    handler = _BreaksAfterData(maildir, fault)
    server = Controller(handler, hostname="127.0.0.1", port=_free_port())
    server.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": server.port,
                "extra": {
                    "disable_tls": True,
                    "disable_ssl": True,
                    "timeout": 2,
                    "retry_limit": 0,
                    "from_email": "meterflow@localhost",
                },
            }
        ),
    )
    run_id = "scheduled__1" if fault == "dropped" else None  # in a DAG run, or by hand
    plan = delivery.make_plan({"period": DAY.isoformat(), "recipients": sponsor}, run_id=run_id)
    try:
        first = delivery.deliver(plan)
        again = delivery.deliver(plan)  # a retry of the task, or a rerun
        assert (first["status"], again["status"]) == ("unknown", "skipped")
        assert "unknown outcome" in again["detail"] and "force=true" in again["detail"]
        assert len(mails_to(maildir, sponsor)) == 1
        assert db.execute(
            "SELECT status, message_id FROM audit.delivery WHERE recipients = %s", (sponsor,)
        ).fetchall() == [("unknown", first["message_id"])]

        alert = db.execute(
            "SELECT kind, state, summary FROM audit.alert WHERE incident LIKE 'delivery:%'"
        ).fetchall()
        assert [(k, s) for k, s, _ in alert] == [("delivery_unknown", "open")]
        assert sponsor in alert[0][2] and "force=true" in alert[0][2]
        (mail,) = mails_to(maildir, team)
        assert "delivery unknown" in mail["Subject"]
        assert all(m["X-Meterflow-Content-Hash"] for m in mails_to(maildir, sponsor))
        assert sponsor not in str(mail["To"])

        handler.faulty = False  # a person checked the mailbox and sends again
        assert delivery.deliver(plan_for(sponsor, force=True))["status"] == "sent"
    finally:
        server.stop()
    assert len(mails_to(maildir, sponsor)) == 2
    assert db.execute(
        "SELECT status, send_no FROM audit.delivery WHERE recipients = %s ORDER BY id", (sponsor,)
    ).fetchall() == [("unknown", 1), ("sent", 2)]
