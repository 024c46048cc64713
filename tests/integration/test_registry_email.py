"""The daily email carries the registry by status and exclusion code: the message the local
SMTP server received shows the counts the warehouse holds (issue 24)."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import date
from pathlib import Path

import pytest

from meterflow import delivery, lifecycle

pytestmark = pytest.mark.integration

# site S1: meters 1-3; S2: 4-5; S3: 6-7; meter 8 has no site (all source A)
SITES = ["S1", "S1", "S1", "S2", "S2", "S3", "S3", None]
REGISTRY = [(f"SMR0000{n}A", site) for n, site in enumerate(SITES, start=1)]


@pytest.fixture
def programme(db):
    """S1 excluded (NONCOMM on meter 1), meter 8 excluded (MANUAL), S2 selected in a tranche
    then meter 4 approved (notified), S3 eligible; none loaded (judged as registered)."""
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO meter.meter (meter_id, source, site) VALUES (%s, right(%s, 1), %s)",
            [(m, m, s) for m, s in REGISTRY],
        )
    db.execute("SELECT meter.judge_loaded()")
    db.execute(
        "UPDATE meter.meter SET status_since = CASE site WHEN 'S2' THEN timestamptz '2026-01-01' "
        "ELSE '2026-02-01' END"
    )
    db.execute(
        "INSERT INTO meter.exclusion (list_name, meter_id, code) VALUES "
        "('noncomm', 'SMR00001A', 'NONCOMM'), ('manual', 'SMR00008A', 'MANUAL')"
    )
    tranche = lifecycle.select_tranche(2, date(2026, 12, 1), system="DCC")
    db.execute(
        "UPDATE meter.meter SET status = 'notified' WHERE meter_id = 'SMR00004A'"
    )  # as an approval file would
    assert tranche["meters"] == 2
    return db


def _mail_to(outbox: Path, address: str) -> email.message.EmailMessage:
    found = []
    for path in sorted((outbox / "new").glob("*")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address in str(msg["To"]):
            found.append(msg)
    assert len(found) == 1
    return found[0]


def test_the_daily_email_shows_the_registry_counts_the_warehouse_holds(
    programme, outbox, monkeypatch, tmp_path
):
    db = programme
    by_status = dict(
        db.execute(
            "SELECT s.name, count(m.meter_id) FROM ref.meter_status s "
            "LEFT JOIN meter.meter m ON m.status = s.code GROUP BY s.name"
        ).fetchall()
    )
    by_code = {
        code: (n, own)
        for code, n, own in db.execute(
            "SELECT exclusion_code, count(*), count(*) FILTER (WHERE excluded_via = meter_id) "
            "FROM meter.meter WHERE status = 'excluded' GROUP BY 1"
        )
    }
    assert by_status == {
        "Loaded": 0,
        "Eligible": 2,
        "Excluded": 4,
        "Selected": 1,
        "Notified": 1,
    }
    assert by_code == {"NONCOMM": (3, 1), "MANUAL": (1, 1)}
    address = f"sponsor-{uuid.uuid4().hex[:10]}@example.net"
    monkeypatch.setenv("MF_REPORTS_DIR", str(tmp_path / "reports"))

    delivery.deliver(delivery.make_plan({"period": "2025-01-15", "recipients": address}))

    msg = _mail_to(outbox, address)
    text = msg.get_body(("plain",)).get_content()
    section = text.split("METER REGISTRY (", 1)[1].split("\n\n", 1)[0]
    assert section.startswith("8 meters, as the email was built)")
    shown = dict(re.findall(r"^  (\w+): (\d+)$", section, flags=re.M))
    assert {k: int(v) for k, v in shown.items()} == by_status
    codes = re.findall(
        r"excluded by (\w+) \(.*\): (\d+) \((\d+) on a list, (\d+) same site\)", text
    )
    assert {c: (int(n), int(own)) for c, n, own, _ in codes} == by_code
    assert all(int(n) == int(own) + int(site) for _, n, own, site in codes)

    html = msg.get_body(("html",)).get_content()
    cells = re.findall(r'data-status="(\w+)">[^<]*</td><td[^>]*>([\d,]+)</td>', html)
    assert {code: int(n) for code, n in cells} == {
        "loaded": 0,
        "eligible": 2,
        "excluded": 4,
        "selected": 1,
        "notified": 1,
    }
    excluded = re.findall(r'data-exclusion="(\w+)">[^<]*</td><td[^>]*>([\d,]+)</td>', html)
    assert {code: int(n) for code, n in excluded} == {c: n for c, (n, _) in by_code.items()}


def test_status_counts_lists_every_status_and_code_even_at_zero(db):
    counts = lifecycle.status_counts()

    assert counts["meters"] == 0
    assert [s["code"] for s in counts["statuses"]] == [
        "loaded",
        "eligible",
        "excluded",
        "selected",
        "notified",
    ]
    codes = {c for (c,) in db.execute("SELECT code FROM ref.exclusion_code")}
    assert {e["code"] for e in counts["exclusions"]} == codes
    assert {e["meters"] for e in counts["exclusions"]} == {0}
