"""Delivery: the period's readings, charts and data-quality summary emailed to the sponsor.

One deliverable is the readings of a local period (a day, an ISO week, a month or a date range,
in the ``local_tz`` zone) for the chosen sources A/B/C:

- an HTML body a person can read on a phone — per source the readings, meters, kWh, peak and
  off-peak means (default tariff of include/config/tariffs.yaml), the data-quality status with
  failed batches and rejected rows, and the meters that stopped reporting — with the charts
  inline (``cid:`` images) and a plain-text alternative;
- an XLSX workbook with sheets A, B and C of the period's readings, every channel with its kind
  (a source whose rows would pass Excel's row limit goes as ``readings_<s>.csv.gz`` instead,
  and its sheet says so);
- a PDF report of the same tables and charts.

Exactly once: the deliverable is identified by (period, recipients, content hash) and every
send is recorded in ``audit.delivery`` (migration V008). A send is claimed ('sending') before
anything goes to SMTP and recorded ('sent' or 'failed') right after, so a retry after an SMTP
error sends once, a rerun of the same content sends nothing unless ``force``, and a run that
died between handing the mail to SMTP and recording it refuses to guess (see ``DeliveryError``).
An SMTP error after the message data was sent (no answer to it in time, the connection
dropped) is 'unknown': the email may have arrived, so it is not retried (the task ends, a
rerun skips it), and the data team is alerted (meterflow.alerts, kind delivery_unknown).
Attachments past ``attachment_limit_mb`` go to S3 and the email carries a presigned link.

Channels (issue 17): kWh, the peak and off-peak means and completeness are import energy (E1,
E2, ...: a meter's import channels of one half hour are summed into its half hour); export (B1,
...) is reported beside it — a column of the tables, a dashed series of the charts — for the
sources that have any; non-energy channels (Q1, ...) are in the workbook and counted, never
summed into kWh.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from meterflow import INCLUDE_DIR, SQL_DIR, config
from meterflow.models import ChannelKind

log = logging.getLogger(__name__)

DELIVERY_SQL = SQL_DIR / "delivery"
TEMPLATES_DIR = INCLUDE_DIR / "templates" / "delivery"
SOURCES = ("A", "B", "C")
FORMATS = ("xlsx", "pdf", "csv")  # csv: CSV.gz per source even when the sheet would fit
DEFAULT_FORMATS = ("xlsx", "pdf")
EXCEL_MAX_ROWS = 1_048_576  # rows of one worksheet, header included
SILENT_AFTER = timedelta(hours=2)  # a meter this far behind its source's newest reading
LINK_EXPIRY = timedelta(days=7)  # the longest a SigV4 presigned URL may live
DAG_ID = "meter_deliver"  # the DAG whose task sends: an unknown outcome's alert names its run
MAX_EXTRA_CHARTS = 6  # charts handed over by the report DAG, at most this many
MAX_CHART_BYTES = 2 * 1024 * 1024
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class DeliveryError(RuntimeError):
    """A deliverable could not be built or sent; the message says what and what to do."""


class DeliveryUnknown(DeliveryError):
    """The SMTP conversation broke after the message data was sent: the email may have gone
    out. Recorded as 'unknown', alerted, never retried automatically (issue 19)."""


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """Local calendar days ``start`` .. ``end``, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """UTC-aware [start, end) of the local days (a clock-change day is 23 or 25 hours)."""
        lo = datetime.combine(self.start, datetime.min.time(), zone)
        hi = datetime.combine(self.end + timedelta(days=1), datetime.min.time(), zone)
        return lo.astimezone(UTC), hi.astimezone(UTC)

    @property
    def label(self) -> str:
        """How a person names it: 'Wed 15 Jan 2025', 'week 2025-W03 (13–19 Jan 2025)', …"""
        s, e = self.start, self.end
        if self.days == 1:
            return s.strftime("%a %d %b %Y")
        iso = s.isocalendar()
        if s.weekday() == 0 and self.days == 7:
            return f"week {iso.year}-W{iso.week:02d} ({s:%d %b}–{e:%d %b %Y})"
        if s.day == 1 and (e + timedelta(days=1)).day == 1 and s.month == e.month:
            return s.strftime("%B %Y")
        return f"{s:%d %b %Y} – {e:%d %b %Y}"

    @property
    def slug(self) -> str:
        return (
            f"{self.start:%Y%m%d}" if self.days == 1 else f"{self.start:%Y%m%d}-{self.end:%Y%m%d}"
        )


_RANGE = re.compile(r"^\s*(\S+)\s*(?:\.\.|/|\bto\b)\s*(\S+)\s*$")


def parse_period(text: str, *, today: date) -> Period:
    """A period from a person's words, relative to the local ``today``.

    ``day``/``yesterday`` (the day before today), ``week`` (the last full ISO week),
    ``month`` (the last full month), ``2025-01-15``, ``2025-01`` (a month), ``2025-W03``
    (an ISO week), or a range ``2025-01-01..2025-01-31`` (also ``/`` or ``to``), inclusive.
    """
    t = (text or "").strip().lower()
    if t in {"day", "yesterday", "daily"}:
        d = today - timedelta(days=1)
        return Period(d, d)
    if t in {"week", "weekly", "last week"}:
        monday = today - timedelta(days=today.weekday() + 7)
        return Period(monday, monday + timedelta(days=6))
    if t in {"month", "monthly", "last month"}:
        end = today.replace(day=1) - timedelta(days=1)
        return Period(end.replace(day=1), end)
    m = _RANGE.match(t)
    if m and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
        first, last = parse_period(m.group(1), today=today), parse_period(m.group(2), today=today)
        return Period(first.start, last.end)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            d = date.fromisoformat(t)
            return Period(d, d)
        if re.fullmatch(r"\d{4}-\d{2}", t):
            start = date.fromisoformat(t + "-01")
            nxt = (start + timedelta(days=32)).replace(day=1)
            return Period(start, nxt - timedelta(days=1))
        m = re.fullmatch(r"(\d{4})-w(\d{1,2})", t)
        if m:
            monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
            return Period(monday, monday + timedelta(days=6))
    except ValueError as exc:
        raise ValueError(f"period {text!r}: {exc}") from exc
    raise ValueError(
        f"period {text!r} not understood: use day, week, month, latest, YYYY-MM-DD, YYYY-MM, "
        "YYYY-Www or a range YYYY-MM-DD..YYYY-MM-DD"
    )


def _event_date(value: Any, *, end: bool) -> date | None:
    """A date from an Asset event's period_start/period_end (date, datetime or ISO text).

    A period_end given as a datetime at local midnight is taken as exclusive (the next day's
    start), a plain date as inclusive.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        return value
    else:
        text = str(value).strip()
        if len(text) <= 10:
            return date.fromisoformat(text)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is not None:
        dt = dt.astimezone(ZoneInfo(config.get("local_tz")))
    if end and dt.time() == datetime.min.time():
        return dt.date() - timedelta(days=1)
    return dt.date()


# --------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """What one run delivers: resolved from Params, the report's Asset events or the schedule.

    ``period_start``/``period_end`` are ISO dates; both None means "the local day of the newest
    reading" (resolved when building, since it needs the warehouse).
    """

    period_start: str | None
    period_end: str | None
    recipients: list[str]
    sources: str = "ABC"
    formats: list[str] = field(default_factory=lambda: list(DEFAULT_FORMATS))
    force: bool = False
    charts: list[str] = field(default_factory=list)
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def normalise_recipients(value: str | Iterable[str] | None) -> list[str]:
    """Addresses from a comma/semicolon separated string or a list: trimmed, deduplicated,
    sorted (so the same people are the same key in audit.delivery)."""
    if value is None:
        return []
    items = re.split(r"[,;\s]+", value) if isinstance(value, str) else list(value)
    out = sorted({str(a).strip().lower() for a in items if str(a).strip()})
    bad = [a for a in out if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", a)]
    if bad:
        raise ValueError(f"recipients: {bad[0]!r} is not an email address")
    return out


def make_plan(
    params: Mapping[str, Any] | None,
    events: Sequence[Mapping[str, Any]] = (),
    *,
    run_type: str = "manual",
    run_after: datetime | None = None,
    run_id: str | None = None,
) -> Plan:
    """Resolve a run into a Plan.

    Period: the ``period`` Param if given; else the span of the report events' periods
    (``period_start``/``period_end`` in their extra); else for a scheduled run the local day
    before ``run_after``; else (manual or an event without a period) the newest day of data.
    Charts: the PNG ``files`` of the events. Recipients: the Param, else the sponsor setting.
    """
    params = dict(params or {})
    zone = ZoneInfo(config.get("local_tz"))
    today = (run_after or datetime.now(zone)).astimezone(zone).date()

    period: Period | None = None
    spec = (params.get("period") or "").strip()
    charts: list[str] = []
    starts: list[date] = []
    ends: list[date] = []
    for extra in events:
        extra = extra if isinstance(extra, Mapping) else {}
        try:
            s = _event_date(extra.get("period_start") or extra.get("period"), end=False)
            e = _event_date(extra.get("period_end"), end=True) or s
        except (TypeError, ValueError) as exc:
            log.warning("report event with an unreadable period %r ignored: %s", extra, exc)
            s = e = None
        if s and e:
            starts.append(s)
            ends.append(max(s, e))
        files = extra.get("files") or extra.get("charts") or []
        if isinstance(files, str):
            files = [files]
        charts += [str(f) for f in files if str(f).lower().endswith(".png")]
    if spec and spec.lower() not in {"auto", "latest"}:
        period = parse_period(spec, today=today)
    elif spec.lower() == "latest":
        period = None
    elif starts:
        period = Period(min(starts), max(ends))
    elif run_type == "scheduled":
        period = parse_period("day", today=today)

    recipients = normalise_recipients(params.get("recipients")) or normalise_recipients(
        config.get("sponsor_email")
    )
    if not recipients:
        raise ValueError("no recipients: set the sponsor_email setting or the recipients Param")
    sources = "".join(s for s in SOURCES if s in "".join(params.get("sources") or SOURCES).upper())
    if not sources:
        raise ValueError(f"sources {params.get('sources')!r}: choose from A, B, C")
    formats = [f for f in FORMATS if f in (params.get("formats") or DEFAULT_FORMATS)]
    return Plan(
        period_start=period.start.isoformat() if period else None,
        period_end=period.end.isoformat() if period else None,
        recipients=recipients,
        sources=sources,
        formats=formats,
        force=bool(params.get("force", False)),
        charts=list(dict.fromkeys(charts)),
        run_id=run_id,
    )


# --------------------------------------------------------------------------- building


def _sql(name: str) -> str:
    return (DELIVERY_SQL / f"{name}.sql").read_text(encoding="utf-8")


@dataclass
class Attachment:
    name: str
    mime: str
    path: Path

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class Chart:
    cid: str
    title: str
    png: bytes


@dataclass
class Deliverable:
    period: Period
    plan: Plan
    subject: str
    html: str
    text: str
    charts: list[Chart]
    attachments: list[Attachment]
    content_hash: str
    summary: dict[str, Any]

    @property
    def recipients(self) -> str:
        return ", ".join(self.plan.recipients)


def build(plan: Plan, out_dir: Path | None = None, *, conn=None) -> Deliverable:
    """Query the warehouse and make the email's parts and attachments under ``out_dir``."""
    import pandas as pd

    from meterflow import tariffs, warehouse

    zone = ZoneInfo(config.get("local_tz"))
    own = conn is None
    conn = conn or warehouse.connect(autocommit=True)
    try:
        sources = list(plan.sources)
        if plan.period_start:
            period = Period(
                date.fromisoformat(plan.period_start), date.fromisoformat(plan.period_end)
            )
        else:
            newest = conn.execute(_sql("latest_day"), {"sources": sources}).fetchone()[0]
            day = newest.astimezone(zone).date() if newest else datetime.now(zone).date()
            period = Period(day, day)
        lo, hi = period.bounds(zone)
        args = {"start": lo, "end": hi, "sources": sources}
        cur = conn.execute(_sql("readings"), args)
        cols = [c.name for c in cur.description]
        readings = pd.DataFrame(cur.fetchall(), columns=cols)
        batches_cur = conn.execute(_sql("batches"), args)
        bcols = [c.name for c in batches_cur.description]
        batches = [dict(zip(bcols, row, strict=True)) for row in batches_cur.fetchall()]
        silent = conn.execute(
            _sql("silent_meters"),
            {**args, "lookback": hi - timedelta(days=30), "grace": SILENT_AFTER},
        ).fetchall()
        # VEE (issue 23): the period's share of estimated readings, one line of the email.
        from meterflow import vee

        estimated = vee.share_line(vee.estimated_share(conn, period.start, period.end))
    finally:
        if own:
            conn.close()

    if readings.empty:
        readings = pd.DataFrame(columns=cols)
    readings["kwh"] = readings["kwh"].astype(float)
    readings["interval_start"] = pd.to_datetime(readings["interval_start"], utc=True)
    readings["ingested_at"] = pd.to_datetime(readings["ingested_at"], utc=True)
    readings["batch_id"] = readings["batch_id"].astype("int64")
    tariff_set = tariffs.load()
    tariff = tariff_set.get()
    local = readings["interval_start"].dt.tz_convert(zone)
    readings["local_start"] = local.dt.tz_localize(None)
    slot = local.dt.weekday * 48 + local.dt.hour * 2 + local.dt.minute // 30
    mask = pd.Series(tariff.week_mask)
    readings["peak"] = mask.reindex(slot.to_numpy()).to_numpy(dtype=bool)

    expected = int((hi - lo).total_seconds() // 1800)
    imports, exports = import_and_export(readings)
    per_source = _source_table(readings, imports, exports, sources, expected)
    quality = _quality_summary(batches, silent, zone)
    summary = {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "label": period.label,
        "timezone": str(zone),
        "tariff": tariff.describe(),
        "peak_label": tariff.peak_label,
        "off_peak_label": tariff.off_peak_label,
        "expected_intervals": expected,
        "sources": per_source,
        "has_export": any(row["export_kwh"] is not None for row in per_source),
        "non_energy_readings": sum(row["non_energy_readings"] for row in per_source),
        "quality": quality,
        "total_readings": len(readings),
        "estimated": estimated,  # VEE (issue 23): None when no VEE run covered the period
    }

    out_dir = Path(out_dir or config.get("reports_dir")) / "delivery" / period.slug
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = _extra_charts(plan.charts)
    charts = _charts(imports, exports, period, sources, tariff, zone, empty=readings.empty) + extra

    digest = hashlib.sha256()
    digest.update(json.dumps(summary, sort_keys=True, default=str).encode())
    digest.update(json.dumps([plan.sources, sorted(plan.formats)]).encode())
    digest.update(pd.util.hash_pandas_object(readings[cols], index=False).to_numpy().tobytes())
    for c in extra:  # the report's own charts; ours follow from the data hashed above
        digest.update(hashlib.sha256(c.png).digest())
    content_hash = digest.hexdigest()
    # meter lifecycle (issue 24): the registry by status and exclusion code as the email is built
    # — a snapshot beside the period's readings, so not part of the deliverable's content hash
    from meterflow import lifecycle

    summary["registry"] = lifecycle.status_counts(conn=None if own else conn)
    stem = f"meterflow_{period.slug}"

    attachments: list[Attachment] = []
    if "xlsx" in plan.formats or "csv" in plan.formats:
        attachments += write_readings(
            readings,
            sources,
            out_dir,
            stem,
            csv_only="xlsx" not in plan.formats,
            csv_always="csv" in plan.formats,
            summary=summary,
        )
    if "pdf" in plan.formats:
        pdf = out_dir / f"{stem}.pdf"
        write_pdf(pdf, summary, charts)
        attachments.append(Attachment(pdf.name, "application/pdf", pdf))

    problems = quality["problems"]
    subject = f"meterflow: smart-meter readings, {period.label}" + (
        f" — {problems} data-quality issue{'s' if problems != 1 else ''}" if problems else ""
    )
    html, text = render_body(summary, charts, subject)
    log.info(
        "built delivery %s: %d readings (%s), %d charts, %d attachments, %d batches, hash %s",
        period.label,
        len(readings),
        ", ".join(f"{s['source']} {s['readings']:,}" for s in per_source),
        len(charts),
        len(attachments),
        len(batches),
        content_hash[:12],
    )
    return Deliverable(
        period=period,
        plan=plan,
        subject=subject,
        html=html,
        text=text,
        charts=charts,
        attachments=attachments,
        content_hash=content_hash,
        summary=summary,
    )


def import_and_export(readings):
    """(import, export) frames of the readings. Import has one row per meter and half hour:
    a meter's import channels (E1 + E2) of the same half hour summed, so means and completeness
    are per meter. Export keeps its readings (kWh and meters are all that is reported of it).
    Non-energy channels are in neither."""
    imports = readings[readings["kind"] == ChannelKind.IMPORT.value]
    if imports["channel"].nunique() > 1:  # some meter may have two import channels
        keys = ["source", "meter_id", "interval_start"]
        imports = imports.groupby(keys, as_index=False, sort=True).agg(
            kwh=("kwh", "sum"), local_start=("local_start", "first"), peak=("peak", "first")
        )
    exports = readings[readings["kind"] == ChannelKind.EXPORT.value]
    return imports, exports


def _source_table(
    readings, imports, exports, sources: Sequence[str], expected: int
) -> list[dict[str, Any]]:
    """Per source: readings (every channel), meters, import kWh, export kWh (None without any),
    import peak/off-peak means per meter and half hour, import completeness."""
    rows = []
    for s in sources:
        r = readings[readings["source"] == s]
        imp = imports[imports["source"] == s]
        exp = exports[exports["source"] == s]
        meters = int(r["meter_id"].nunique())
        importing = int(imp["meter_id"].nunique())
        peak, off = imp[imp["peak"]], imp[~imp["peak"]]
        rows.append(
            {
                "source": s,
                "readings": len(r),
                "meters": meters,
                "kwh": round(float(imp["kwh"].sum()), 3),
                "export_kwh": round(float(exp["kwh"].sum()), 3) if len(exp) else None,
                "export_meters": int(exp["meter_id"].nunique()),
                "non_energy_readings": int((r["kind"] == ChannelKind.NON_ENERGY.value).sum()),
                "peak_mean": round(float(peak["kwh"].mean()), 4) if len(peak) else None,
                "offpeak_mean": round(float(off["kwh"].mean()), 4) if len(off) else None,
                "completeness": (
                    round(len(imp) / (importing * expected), 4) if importing else None
                ),
                "estimated": int((r["quality"] != "A").sum()),
            }
        )
    return rows


def _quality_summary(batches: list[dict], silent: list[tuple], zone: ZoneInfo) -> dict[str, Any]:
    """Batches by status, failed batches with why, warnings, rejected rows by reason."""
    by_status: dict[str, int] = {}
    failed, warned, reasons = [], [], {}
    for b in batches:
        by_status[b["status"]] = by_status.get(b["status"], 0) + 1
        for reason, n in (b["rejected_by_reason"] or {}).items():
            reasons[reason] = reasons.get(reason, 0) + int(n)
        checks = [_failure_text(f) for f in (b["failures"] or [])]
        gx = ""
        if b["success"] is False:
            gx = f"{b['expectations_failed']} of {b['expectations_evaluated']} checks failed" + (
                f": {'; '.join(checks[:3])}" if checks else ""
            )
        entry = {
            "batch_id": int(b["batch_id"]),
            "file": b["file_name"],
            "feed": b["feed"],
            "status": b["status"],
        }
        if b["status"] in ("rejected", "failed") or b["verdict"] == "rejected":
            why = "; ".join(x for x in (gx, b["error"]) if x) or b["status"]
            failed.append({**entry, "why": why[:400]})
        elif gx:
            warned.append({**entry, "why": gx[:400]})
    silent_rows = [
        {
            "source": s,
            "meter_id": m,
            "last": last.astimezone(zone).strftime("%d %b %H:%M") if last else "—",
        }
        for s, m, last in silent
    ]
    rows = {
        k: sum(int(b[k] or 0) for b in batches)
        for k in ("rows_read", "rows_staged", "rows_rejected", "rows_duplicate")
    }
    problems = len(failed) + len(silent_rows)
    return {
        "batches": len(batches),
        "by_status": dict(sorted(by_status.items())),
        "rows": rows,
        "rejected_by_reason": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "failed_batches": failed,
        "warning_batches": warned,
        "silent_meters": silent_rows,
        "problems": problems,
        "status": "issues" if problems else "ok",
    }


def _failure_text(f: Any) -> str:
    """One failed expectation (meterflow.quality.Failure as JSON) in a few words."""
    if not isinstance(f, dict):
        return str(f)
    what = f.get("check") or f.get("expectation") or "check"
    if f.get("column"):
        what += f" on {f['column']}"
    if f.get("unexpected_count"):
        what += f" ({f['unexpected_count']:,} rows)"
    return what


# --------------------------------------------------------------------------- charts


_COLOURS = {"A": "#1f77b4", "B": "#ff7f0e", "C": "#2ca02c"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


# Charts are drawn for a phone: the email shows them ~360 CSS px wide, so the figure is narrow
# and its text large enough to stay readable when scaled down (and sharp on a desktop).
CHART_SIZE = (5.6, 3.4)  # inches at 110 dpi: 616 px, the body's 608 px column
CHART_FONT = {"font.size": 10.5, "axes.titlesize": 11.5, "legend.fontsize": 10}


def _charts(imports, exports, period: Period, sources, tariff, zone, *, empty: bool) -> list[Chart]:
    """Consumption over the period, peak vs off-peak means, and the average daily profile:
    import, with export beside it (dashed) for the sources that have any."""
    import matplotlib.pyplot as plt

    with plt.rc_context(CHART_FONT):
        return _draw_charts(imports, exports, period, sources, tariff, zone, empty)


def _export_line(ax, series, source: str, **kw) -> None:
    """A source's export as a dashed line in its colour (nothing when it has no export)."""
    if len(series):
        ax.plot(
            series.index,
            series.to_numpy(),
            color=_COLOURS[source],
            linestyle="--",
            label=f"{source} export",
            **kw,
        )


def _draw_charts(imports, exports, period: Period, sources, tariff, zone, empty) -> list[Chart]:
    from meterflow.charts import backend

    backend()
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    charts = []
    with_export = {s for s in sources if (exports["source"] == s).any()}

    def name(s: str) -> str:  # "source A", or "A import" beside an "A export" line
        return f"{s} import" if with_export else f"source {s}"

    fig, ax = plt.subplots(figsize=CHART_SIZE)
    if period.days == 1:
        title = "Half-hourly kWh, all meters"
        for s in sources:
            r = imports[imports["source"] == s].groupby("local_start")["kwh"].sum()
            if len(r):
                ax.plot(r.index, r.to_numpy(), label=name(s), color=_COLOURS[s])
            if s in with_export:
                e = exports[exports["source"] == s].groupby("local_start")["kwh"].sum()
                _export_line(ax, e, s)
        ax.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 6)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.set_ylabel("kWh per half hour")
        for i, slot in enumerate(tariff.peak_slots(period.start.weekday())):
            t0 = datetime.combine(period.start, datetime.min.time()) + timedelta(minutes=30 * slot)
            ax.axvspan(
                t0,
                t0 + timedelta(minutes=30),
                color="#d62728",
                alpha=0.08,
                lw=0,
                label=f"{tariff.peak_label} hours" if i == 0 else None,
            )
    else:
        title = "Daily kWh, all meters"
        daily = imports.assign(day=imports["local_start"].dt.normalize())
        for s in sources:
            r = daily[daily["source"] == s].groupby("day")["kwh"].sum()
            if len(r):
                ax.plot(r.index, r.to_numpy(), marker="o", ms=3, label=name(s), color=_COLOURS[s])
            if s in with_export:
                e = exports[exports["source"] == s]
                _export_line(
                    ax,
                    e.groupby(e["local_start"].dt.normalize())["kwh"].sum(),
                    s,
                    marker="o",
                    ms=3,
                )
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=6))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.set_ylabel("kWh per day")
    _finish(ax, title, empty)
    charts.append(Chart("consumption@meterflow", title, _png(fig)))

    fig, ax = plt.subplots(figsize=CHART_SIZE)
    title = f"Mean kWh per meter and half hour, {tariff.peak_label} vs {tariff.off_peak_label}"
    width = 0.38
    for i, s in enumerate(sources):
        r = imports[imports["source"] == s]  # means of import: one meter's half hour each
        p = r.loc[r["peak"], "kwh"].mean() if r["peak"].any() else 0.0
        o = r.loc[~r["peak"], "kwh"].mean() if (~r["peak"]).any() else 0.0
        ax.bar(
            i - width / 2, p, width, color="#d62728", label=tariff.peak_label if i == 0 else None
        )
        ax.bar(
            i + width / 2,
            o,
            width,
            color="#7f7f7f",
            label=tariff.off_peak_label if i == 0 else None,
        )
    ax.set_xticks(range(len(sources)), [f"source {s}" for s in sources])
    ax.set_ylabel("kWh per meter and half hour")
    _finish(ax, title, empty)
    charts.append(Chart("peak@meterflow", title, _png(fig)))

    if period.days > 1:
        fig, ax = plt.subplots(figsize=CHART_SIZE)
        title = "Average day: mean kWh per meter and half hour"
        slot = imports["local_start"].dt.hour * 2 + imports["local_start"].dt.minute // 30
        out_slot = exports["local_start"].dt.hour * 2 + exports["local_start"].dt.minute // 30
        for s in sources:
            r = imports[imports["source"] == s].groupby(slot)["kwh"].mean()
            if len(r):
                ax.plot(r.index / 2, r.to_numpy(), label=name(s), color=_COLOURS[s])
            if s in with_export:
                e = exports[exports["source"] == s].groupby(out_slot)["kwh"].mean()
                e.index = e.index / 2
                _export_line(ax, e, s)
        for i, sl in enumerate(tariff.peak_slots(0)):
            ax.axvspan(
                sl / 2,
                sl / 2 + 0.5,
                color="#d62728",
                alpha=0.08,
                lw=0,
                label=f"{tariff.peak_label} hours (Mon)" if i == 0 else None,
            )
        ax.set_xlim(0, 24)
        ax.set_xticks(range(0, 25, 6), [f"{h:02d}:00" for h in range(0, 25, 6)])
        ax.set_ylabel("kWh per meter and half hour")
        _finish(ax, title, empty)
        charts.append(Chart("profile@meterflow", title, _png(fig)))
    return charts


def _finish(ax, title: str, empty: bool) -> None:
    ax.set_title(title, loc="left")
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    if empty:
        ax.text(
            0.5,
            0.5,
            "no readings in this period",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="#666",
        )
    elif handles := ax.get_legend_handles_labels()[0]:
        # below the axes: inside, it hides lines on a narrow chart
        ax.legend(
            frameon=False,
            ncol=len(handles) if len(handles) <= 3 else 2,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
        )


def _extra_charts(paths: Sequence[str]) -> list[Chart]:
    """PNG charts handed over by the report DAG (Asset extra "files"); missing ones skipped."""
    out = []
    for p in list(paths)[:MAX_EXTRA_CHARTS]:
        path = Path(p)
        if not path.is_file() or path.stat().st_size > MAX_CHART_BYTES:
            log.warning("report chart %s is missing or too large; left out", path)
            continue
        png = path.read_bytes()
        if not png.startswith(b"\x89PNG"):
            log.warning("report chart %s is not a PNG; left out", path)
            continue
        cid = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem) + "@meterflow"
        out.append(Chart(cid, path.stem.replace("_", " "), png))
    return out


# --------------------------------------------------------------------------- attachments


def write_readings(
    readings,
    sources: Sequence[str],
    out_dir: Path,
    stem: str,
    *,
    csv_only: bool = False,
    csv_always: bool = False,
    summary: dict[str, Any] | None = None,
) -> list[Attachment]:
    """The XLSX workbook (sheets A, B, C) and, per source that does not fit a sheet (or when
    asked), ``<stem>_<s>.csv.gz``. One row per meter, channel and half hour, with the channel's
    kind (import, export, non_energy: a non-energy value is in its own unit, not kWh). Times:
    UTC and local wall clock, both as Excel datetimes."""
    from openpyxl import Workbook

    header = [
        "meter_id",
        "channel",
        "kind",
        "interval_start_utc",
        "interval_start_local",
        "kwh",
        "quality",
        "batch_id",
        "ingested_at_utc",
    ]
    out: list[Attachment] = []
    wb = Workbook(write_only=True)
    for s in sources:
        r = readings[readings["source"] == s]
        frame = r.assign(
            interval_start_utc=r["interval_start"].dt.tz_localize(None),
            interval_start_local=r["local_start"],
            ingested_at_utc=r["ingested_at"].dt.tz_convert("UTC").dt.tz_localize(None),
        )[header]
        too_big = len(frame) + 1 > EXCEL_MAX_ROWS
        if too_big or csv_always or csv_only:
            path = out_dir / f"{stem}_{s}.csv.gz"
            with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
                frame.to_csv(fh, index=False, date_format="%Y-%m-%d %H:%M:%S")
            out.append(Attachment(path.name, "application/gzip", path))
        if csv_only:
            continue
        ws = wb.create_sheet(s)
        if too_big:
            ws.append(
                [
                    f"Source {s}: {len(frame):,} readings are more than an Excel sheet holds "
                    f"({EXCEL_MAX_ROWS - 1:,}); they are in {stem}_{s}.csv.gz."
                ]
            )
            continue
        ws.column_dimensions["A"].width = 12
        ws.column_dimensions["C"].width = 11
        for col in "DEI":
            ws.column_dimensions[col].width = 20
        ws.freeze_panes = "A2"
        ws.append(header)
        for row in frame.itertuples(index=False):
            ws.append(
                [
                    row[0],
                    row[1],
                    row[2],
                    row[3].to_pydatetime(),
                    row[4].to_pydatetime(),
                    row[5],
                    row[6],
                    int(row[7]),
                    row[8].to_pydatetime(),
                ]
            )
    if csv_only:
        return out
    if summary:
        ws = wb.create_sheet("Summary")
        ws.append([f"meterflow readings, {summary['label']} ({summary['timezone']})"])
        ws.append(["Tariff", summary["tariff"]])
        ws.append([])
        ws.append(
            [
                "source",
                "readings",
                "meters",
                "import kWh",
                "export kWh",
                "meters exporting",
                "peak mean kWh",
                "off-peak mean kWh",
                "completeness",
                "non-energy readings",
            ]
        )
        for row in summary["sources"]:
            ws.append(
                [
                    row["source"],
                    row["readings"],
                    row["meters"],
                    row["kwh"],
                    row["export_kwh"],
                    row["export_meters"],
                    row["peak_mean"],
                    row["offpeak_mean"],
                    row["completeness"],
                    row["non_energy_readings"],
                ]
            )
        ws.append([])
        ws.append(
            [
                "kWh, means and completeness are import energy (channels E1, E2, ...); export "
                "(B1, ...) is beside it; non-energy channels (Q1, ...) are in the sheets, never "
                "in kWh."
            ]
        )
    path = out_dir / f"{stem}.xlsx"
    wb.save(path)
    return [Attachment(path.name, XLSX_MIME, path), *out]


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def write_pdf(path: Path, summary: dict[str, Any], charts: Sequence[Chart]) -> None:
    """An A4 report: the summary and data-quality tables, then one page per two charts."""
    from meterflow.charts import backend

    backend()
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    a4 = (8.27, 11.69)
    q = summary["quality"]
    with PdfPages(
        path,
        metadata={
            "Title": f"meterflow readings, {summary['label']}",
            "Author": "meterflow",
            "CreationDate": None,
        },
    ) as pdf:
        fig = plt.figure(figsize=a4)
        fig.text(0.07, 0.95, "meterflow — smart-meter readings", fontsize=16, weight="bold")
        fig.text(
            0.07,
            0.925,
            f"{summary['label']}  ·  times in {summary['timezone']}",
            fontsize=10,
            color="#444",
        )
        fig.text(0.07, 0.905, f"Tariff {summary['tariff']}", fontsize=8.5, color="#444")
        ax = fig.add_axes((0.07, 0.70, 0.86, 0.16))
        ax.axis("off")
        ax.set_title("Readings per source", loc="left", fontsize=11, weight="bold")
        export = summary.get("has_export", False)
        rows = [
            [
                s["source"],
                _fmt(s["readings"]),
                _fmt(s["meters"]),
                _fmt(s["kwh"], 1),
                *([_fmt(s["export_kwh"], 1)] if export else []),
                _fmt(s["peak_mean"]),
                _fmt(s["offpeak_mean"]),
                _pct(s["completeness"]),
            ]
            for s in summary["sources"]
        ]
        _table(
            ax,
            [
                "source",
                "readings",
                "meters",
                "import kWh" if export else "kWh",
                *(["export kWh"] if export else []),
                f"{summary['peak_label']} mean",
                f"{summary['off_peak_label']} mean",
                "complete",
            ],
            rows,
            widths=(
                [0.08, 0.12, 0.1, 0.13, 0.13, 0.16, 0.17, 0.11]
                if export
                else [0.1, 0.14, 0.12, 0.14, 0.17, 0.19, 0.14]
            ),
        )
        ax = fig.add_axes((0.07, 0.50, 0.86, 0.18))
        ax.axis("off")
        status = "OK" if q["status"] == "ok" else f"{q['problems']} issue(s)"
        ax.set_title(
            f"Data quality: {status} — {q['batches']} batches "
            f"({', '.join(f'{k} {v}' for k, v in q['by_status'].items()) or 'none'})",
            loc="left",
            fontsize=11,
            weight="bold",
        )
        frows = [
            [str(f["batch_id"]), f["file"][:34], f["status"], _wrap(f["why"], 50, 3)]
            for f in q["failed_batches"][:8]
        ] or [["—", "no failed batches", "", ""]]
        _table(ax, ["batch", "file", "status", "why"], frows, widths=[0.08, 0.3, 0.12, 0.5])
        ax = fig.add_axes((0.07, 0.12, 0.86, 0.32))
        ax.axis("off")
        ax.set_title("Meters that stopped reporting", loc="left", fontsize=11, weight="bold")
        srows = [[m["source"], m["meter_id"], m["last"]] for m in q["silent_meters"][:20]] or [
            ["—", "every meter reported to the end of the period", ""]
        ]
        _table(ax, ["source", "meter", "last reading (local)"], srows, widths=[0.15, 0.5, 0.35])
        if q["rejected_by_reason"]:
            fig.text(
                0.07,
                0.08,
                "Rejected rows: "
                + ", ".join(
                    f"{k.replace('_', ' ')} {v:,}" for k, v in q["rejected_by_reason"].items()
                ),
                fontsize=8.5,
            )
        pdf.savefig(fig)
        plt.close(fig)
        for i in range(0, len(charts), 2):
            fig = plt.figure(figsize=a4)
            for j, chart in enumerate(charts[i : i + 2]):
                ax = fig.add_axes((0.05, 0.52 - j * 0.46, 0.9, 0.42))
                ax.imshow(mpimg.imread(io.BytesIO(chart.png), format="png"))
                ax.axis("off")
            fig.text(0.05, 0.97, f"meterflow — {summary['label']}", fontsize=9, color="#444")
            pdf.savefig(fig)
            plt.close(fig)


def _wrap(text: str, width: int, max_lines: int) -> str:
    """``text`` wrapped for a PDF table cell; cut with an ellipsis past ``max_lines``."""
    import textwrap

    lines = textwrap.wrap(text, width) or [""]
    if len(lines) > max_lines:
        lines = [
            *lines[: max_lines - 1],
            textwrap.shorten(" ".join(lines[max_lines - 1 :]), width, placeholder=" …"),
        ]
    return "\n".join(lines)


def _table(ax, header: list[str], rows: list[list[str]], widths: list[float] | None = None):
    t = ax.table(
        cellText=rows, colLabels=header, loc="upper left", cellLoc="left", colWidths=widths
    )
    t.auto_set_font_size(False)
    t.set_fontsize(8.5)
    t.scale(1, 1.25)
    cells = t.get_celld()
    for r in range(len(rows) + 1):  # a wrapped cell makes its whole row taller
        row = [cells[r, c] for c in range(len(header))]
        lines = max(cell.get_text().get_text().count("\n") + 1 for cell in row)
        for cell in row:
            cell.set_height(cell.get_height() * lines)
    for (r, _c), cell in t.get_celld().items():
        cell.set_edgecolor("#ddd")
        if r == 0:
            cell.set_facecolor("#f0f3f7")
            cell.set_text_props(weight="bold")


# --------------------------------------------------------------------------- the body


def render_body(
    summary: dict[str, Any],
    charts: Sequence[Chart],
    subject: str,
    links: Sequence[dict[str, str]] = (),
    attached: Sequence[str] = (),
) -> tuple[str, str]:
    """The HTML body (inline charts by cid) and its plain-text alternative."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt
    env.filters["pct"] = _pct
    ctx = {
        "s": summary,
        "q": summary["quality"],
        "charts": charts,
        "subject": subject,
        "links": list(links),
        "attached": list(attached),
    }
    html = env.get_template("email.html.j2").render(**ctx)
    text_env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    text_env.filters.update(env.filters)
    text = text_env.get_template("email.txt.j2").render(**ctx)
    return html, text


# --------------------------------------------------------------------------- sending


@dataclass
class Outcome:
    status: str  # sent | skipped
    period_start: str
    period_end: str
    recipients: str
    content_hash: str
    send_no: int | None = None
    message_id: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


def send(d: Deliverable, *, conn=None) -> Outcome:
    """Email the deliverable once (see the module docstring); return what happened."""
    from meterflow import warehouse

    key = {
        "period_start": d.period.start,
        "period_end": d.period.end,
        "recipients": d.recipients,
        "content_hash": d.content_hash,
    }
    base = Outcome(
        "skipped",
        d.period.start.isoformat(),
        d.period.end.isoformat(),
        d.recipients,
        d.content_hash,
    )
    own = conn is None
    conn = conn or warehouse.connect(autocommit=True)
    try:
        sent = conn.execute(_sql("find_sent"), key).fetchone()
        if sent and not d.plan.force:
            base.send_no, base.message_id = sent[1], sent[3]
            base.detail = (
                f"already sent to {d.recipients} at {sent[2]:%Y-%m-%d %H:%M %Z} "
                f"(audit.delivery id {sent[0]}); trigger with force=true to resend"
                if sent[4] == "sent"
                else f"send {sent[1]} to {d.recipients} (audit.delivery id {sent[0]}) has an "
                "unknown outcome: the SMTP connection broke after the message was handed over. "
                "Not sending again by itself: check the mailbox, then trigger with force=true"
            )
            log.info("delivery %s: %s", d.period.label, base.detail)
            return base
        claim = {
            **key,
            "forced": d.plan.force,
            "run_id": d.plan.run_id,
            "sources": d.plan.sources,
            "formats": ",".join(d.plan.formats),
            "size_bytes": sum(a.size for a in d.attachments),
        }
        row = conn.execute(_sql("claim"), claim).fetchone()
        if row is None:
            stale = conn.execute(_sql("in_flight"), key).fetchone()
            if not d.plan.force:
                raise DeliveryError(
                    f"delivery of {d.period.label} to {d.recipients} was claimed at "
                    f"{stale[1]:%Y-%m-%d %H:%M:%S %Z} by run {stale[2]} (audit.delivery id "
                    f"{stale[0]}) and never recorded as sent or failed: that run is still "
                    "sending, or died after handing the email to SMTP. Not sending twice: "
                    "check the recipients' mailbox, then trigger with force=true to send again."
                )
            conn.execute(
                _sql("finish"),
                {
                    "id": stale[0],
                    "status": "failed",
                    "message_id": None,
                    "attachments": None,
                    "detail": f"interrupted; superseded by a forced send of run {d.plan.run_id}",
                },
            )
            row = conn.execute(_sql("claim"), claim).fetchone()
        delivery_id, send_no = row
        msg, attachments = None, None
        try:
            msg, attachments = compose(d, send_no)
            refused = _smtp_send(msg, d.plan.recipients)
        except DeliveryUnknown as exc:
            return _unknown(conn, d, base, delivery_id, send_no, msg, attachments, exc)
        except BaseException as exc:
            conn.execute(
                _sql("finish"),
                {
                    "id": delivery_id,
                    "status": "failed",
                    "message_id": None,
                    "attachments": None,
                    "detail": f"{type(exc).__name__}: {exc}"[:2000],
                },
            )
            raise
        detail = f"refused by the server: {refused}" if refused else ""
        conn.execute(
            _sql("finish"),
            {
                "id": delivery_id,
                "status": "sent",
                "message_id": msg["Message-ID"],
                "attachments": json.dumps(attachments),
                "detail": detail or None,
            },
        )
    finally:
        if own:
            conn.close()
    log.info(
        "sent %s to %s (send %d, %s, %s)",
        d.period.label,
        d.recipients,
        send_no,
        msg["Message-ID"],
        ", ".join(f"{a['name']} {a['how']}" for a in attachments) or "no attachments",
    )
    return Outcome(
        "sent",
        base.period_start,
        base.period_end,
        d.recipients,
        d.content_hash,
        send_no,
        msg["Message-ID"],
        attachments,
        detail,
    )


def _unknown(
    conn,
    d: Deliverable,
    base: Outcome,
    delivery_id: int,
    send_no: int,
    msg,
    attachments,
    exc: DeliveryUnknown,
) -> Outcome:
    """Record an unknown outcome and alert the data team (alerts' one policy); no retry."""
    from meterflow import alerts

    conn.execute(
        _sql("finish"),
        {
            "id": delivery_id,
            "status": "unknown",
            "message_id": msg["Message-ID"],
            "attachments": json.dumps(attachments),
            "detail": str(exc)[:2000],
        },
    )
    summary = (
        f"delivery of {d.period.label} to {d.recipients} (audit.delivery id {delivery_id}, "
        f"{msg['Message-ID']}): outcome unknown, the SMTP connection broke after the message "
        f"data was sent ({type(exc.__cause__).__name__}: {exc.__cause__}). It may have "
        "arrived: check the mailbox; meter_deliver with force=true sends it again"
    )
    link = alerts.task_log_url(DAG_ID, d.plan.run_id, "deliver") if d.plan.run_id else None
    run_id = d.plan.run_id or f"manual__delivery_{delivery_id}"  # outside Airflow: mailed now
    alerts.record(
        f"delivery:{delivery_id}",
        "delivery_unknown",
        summary,
        link=link,
        dag_id=DAG_ID,
        run_id=run_id,
    )
    alerts.flush(DAG_ID, run_id)
    log.error("%s", summary)
    return replace(
        base,
        status="unknown",
        send_no=send_no,
        message_id=msg["Message-ID"],
        attachments=attachments,
        detail=summary,
    )


def compose(d: Deliverable, send_no: int = 1):
    """The MIME message: mixed[alternative[text, related[html, charts]], attachments].

    Attachments are attached while the message stays under ``attachment_limit_mb``; the rest go
    to S3 and the body carries a presigned link. Returns (message, attachment records).
    """
    from email.message import EmailMessage
    from email.utils import formatdate

    limit = int(config.get("attachment_limit_mb") * 1024 * 1024)
    used = sum(len(c.png) for c in d.charts)
    records: list[dict[str, Any]] = []
    attach: list[Attachment] = []
    for a in d.attachments:
        if used + a.size <= limit:
            attach.append(a)
            used += a.size
            records.append({"name": a.name, "bytes": a.size, "how": "attached"})
        else:
            key, url = upload_for_link(a, d)
            records.append(
                {"name": a.name, "bytes": a.size, "how": "link", "s3_key": key, "url": url}
            )
    links = [r for r in records if r["how"] == "link"]
    html, text = render_body(
        d.summary, d.charts, d.subject, links=links, attached=[a.name for a in attach]
    )

    msg = EmailMessage()
    msg["Subject"] = d.subject
    msg["To"] = ", ".join(d.plan.recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = (
        f"<meterflow.{d.period.slug}.{d.content_hash[:16]}.{send_no}@meterflow.local>"
    )
    msg["X-Meterflow-Content-Hash"] = d.content_hash
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    for c in d.charts:
        html_part.add_related(
            c.png, "image", "png", cid=f"<{c.cid}>", filename=c.cid.split("@")[0] + ".png"
        )
    for a in attach:
        maintype, subtype = a.mime.split("/", 1)
        msg.add_attachment(a.path.read_bytes(), maintype=maintype, subtype=subtype, filename=a.name)
    return msg, records


def upload_for_link(a: Attachment, d: Deliverable) -> tuple[str, str]:
    """Put an attachment on S3 and return (key, presigned GET URL valid LINK_EXPIRY)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    bucket = config.get("s3_bucket")
    key = f"{config.s3_prefix('deliveries')}/{d.period.slug}/{d.content_hash[:16]}/{a.name}"
    hook = S3Hook(aws_conn_id=config.get("aws_conn_id"))
    hook.load_file(filename=str(a.path), key=key, bucket_name=bucket, replace=True)
    url = hook.generate_presigned_url(
        client_method="get_object",
        params={"Bucket": bucket, "Key": key},
        expires_in=int(LINK_EXPIRY.total_seconds()),
    )
    if not url:
        raise DeliveryError(f"could not presign s3://{bucket}/{key}")
    log.info("%s (%s bytes) is over the attachment limit: s3://%s/%s", a.name, a.size, bucket, key)
    return key, url


def _smtp_send(msg, recipients: list[str]) -> dict:
    """Hand the message to the SMTP connection; raise DeliveryError naming the server."""
    import smtplib

    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from airflow.sdk import BaseHook

    conn_id = config.get("smtp_conn_id")
    where = conn_id
    phase = {"data": False}
    try:
        c = BaseHook.get_connection(conn_id)
        where = f"{conn_id} ({c.host}:{c.port})"
        with SmtpHook(smtp_conn_id=conn_id) as hook:
            msg["From"] = hook.from_email or "meterflow@localhost"
            # The hook's send_email_smtp builds its own MIME tree (no inline cid images), so the
            # message built here goes through the client the hook opened and authenticated.
            client = hook._smtp_client
            client.data = _noting_data(client.data, phase)
            return client.send_message(msg, to_addrs=recipients) or {}
    except (OSError, smtplib.SMTPException) as exc:
        # Inside DATA, only an SMTPDataError is an answer (DATA refused, or the message
        # rejected at its end): anything else — a timeout waiting for the server's reply, a
        # dropped connection — leaves the message possibly delivered. (A drop in the instant
        # between the DATA command and the server's 354 counts too: the safe side.)
        if phase["data"] and not isinstance(exc, smtplib.SMTPDataError):
            raise DeliveryUnknown(
                f"emailing {msg['Subject']!r} to {', '.join(recipients)} through SMTP "
                f"connection {where} broke after the message data was sent: "
                f"{type(exc).__name__}: {exc}. It may have been delivered: not retried."
            ) from exc
        raise DeliveryError(
            f"could not email {msg['Subject']!r} to {', '.join(recipients)} through SMTP "
            f"connection {where}: {type(exc).__name__}: {exc}. Nothing was sent; the task "
            "retries with back-off."
        ) from exc
    except Exception as exc:
        if type(exc).__name__ == "AirflowException":
            raise DeliveryError(f"SMTP connection {where}: {exc}") from exc
        raise


def _noting_data(data, phase: dict[str, bool]):
    """smtplib's ``data`` that first notes the conversation reached DATA (see _smtp_send)."""

    def noted(message):
        phase["data"] = True
        return data(message)

    return noted


def deliver(plan: Plan | Mapping[str, Any], out_dir: Path | None = None) -> dict[str, Any]:
    """Build and send one deliverable; the entry point of meter_deliver's task."""
    if not isinstance(plan, Plan):
        plan = Plan.from_dict(plan)
    d = build(plan, out_dir)
    return asdict(send(d))
