"""Peak-period aggregation: day sums, local days to recompute, the mart refresh, report data.

Aggregate on write. Writers of readings keep *day sums* (V013) of the local days they wrote,
in their own transaction: promotion (meterflow.segregate) and restore (meterflow.archive) call
:func:`resum_spans`. :func:`resum` computes, from the readings of whole (source, local day)s,
with the SQL files of include/sql/aggregate/:

1. ``sum_slots.sql`` maps every UTC half hour of those days (a few thousand, not one per
   reading) to its local day in the tariffs' zone (``AT TIME ZONE``, so 2025-03-30 has 46 half
   hours and 2025-10-26 has 50 in Europe/London), its half hour of the day and its *interval
   class* (the OR of the bits of every tariff whose peak band holds that half hour of the local
   week, :meth:`meterflow.tariffs.TariffSet.class_codes`). ``sum_day_starts.sql`` and
   ``sum_band_bounds.sql`` reduce it to the instants where a local day, or a tariff's peak
   band, begins or ends.
2. ``sum_read.sql`` scans each source table summing per half hour (the load profile, and the
   check that every reading is on the 30-minute grid: a reading off it raises
   :class:`AggregationError`); ``sum_meter_days.sql`` scans them again, in parallel, grouped
   straight by meter and local day with one peak ``FILTER`` per tariff (a reading's day and
   bands found by binary search over those instants).
3. ``save_meter_day.sql``, ``save_slot_day.sql``, ``save_day_sum.sql`` keep them in
   mart.meter_day, mart.slot_day and mart.day_sum (tariff fingerprint and a new version).

:func:`refresh` rebuilds the marts (V006) of a set of (source, local day) pairs in ONE
transaction from those sums: days without sums under its tariffs (``stale_days.sql``; or every
day with ``rescan``) are summed first; days whose sums kept the version their last refresh
used (``unchanged_days.sql``, mart.refresh_mark) are skipped; ``update_*.sql`` rewrite the
mart.peak_daily (one tariff at a time) and mart.consumption_daily rows whose values changed
(skipped when ``any_*.sql`` finds no row of those days) and ``insert_*.sql`` add the missing
ones in primary-key order (not ON CONFLICT: it locks, so dirties, every existing row even when
it changes nothing); ``upsert_*.sql`` write mart.load_profile_daily, then roll the weeks,
months and regions of the touched days up from mart.consumption_daily.

Incremental: a run recomputes only the days touched by new batches (found through the
readings' batch_id) or the days asked for. Idempotent: rows are rewritten only when a value
changes, and a per-meter day (sum or mart row) is never replaced by one computed from fewer
intervals, so the marts keep days whose readings meter_archive has moved to S3.

Table names come from :data:`TABLES`, a fixed mapping; every value is a bound parameter.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from meterflow import SQL_DIR
from meterflow.models import DEFAULT_CHANNEL, ChannelKind
from meterflow.tariffs import TariffSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

AGGREGATE_SQL = SQL_DIR / "aggregate"
SCHEMA = "meter"
TABLES: dict[str, str] = {"A": "readings_a", "B": "readings_b", "C": "readings_c"}
SOURCES = tuple(TABLES)
DEFAULT_PERIOD_DAYS = 7  # a scheduled run reports the 7 local days ending yesterday

# Periods of meter_consumption_report.
CSV_HEADER = [
    "meter_id",
    "channel",
    "kind",
    "interval_start_utc",
    "interval_start_local",
    "kwh",
    "quality",
]
PERIODS = ("previous_hour", "current_day", "current_week", "current_month", "previous_month")


class AggregationError(ValueError):
    """A request the aggregation cannot serve (unknown meter, bad range); the message says why."""


def statement(name: str) -> str:
    return (AGGREGATE_SQL / f"{name}.sql").read_text(encoding="utf-8")


def source_statement(name: str, source: str) -> sql.Composed:
    """A statement of include/sql/aggregate/ with ``{table}`` = the source's readings table."""
    return sql.SQL(statement(name)).format(table=sql.Identifier(SCHEMA, TABLES[source]))


# --------------------------------------------------------------------------------------------
# What a run does: which days to recompute, which period to report


@dataclass(frozen=True)
class Plan:
    """One meter_peak_report run: days to recompute per source, and the period to chart."""

    days: dict[str, list[date]]
    period_start: date
    period_end: date
    sources: tuple[str, ...]
    tariff: str
    reason: str
    batch_ids: dict[str, list[int]] = field(default_factory=dict)
    rescan: bool = False  # sum the days from their readings again (Param rescan)

    @property
    def day_count(self) -> int:
        return sum(len(v) for v in self.days.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["days"] = {s: [d.isoformat() for d in ds] for s, ds in self.days.items()}
        out["period_start"] = self.period_start.isoformat()
        out["period_end"] = self.period_end.isoformat()
        out["sources"] = list(self.sources)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            days={s: [date.fromisoformat(d) for d in ds] for s, ds in data["days"].items()},
            period_start=date.fromisoformat(data["period_start"]),
            period_end=date.fromisoformat(data["period_end"]),
            sources=tuple(data["sources"]),
            tariff=data["tariff"],
            reason=data["reason"],
            batch_ids={s: list(v) for s, v in (data.get("batch_ids") or {}).items()},
            rescan=bool(data.get("rescan")),
        )


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def date_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def default_period(now: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The 7 local days ending yesterday (the daily 06:00 run's report)."""
    end = local_today(now, zone) - timedelta(days=1)
    return end - timedelta(days=DEFAULT_PERIOD_DAYS - 1), end


def parse_sources(value: Iterable[str] | str | None) -> tuple[str, ...]:
    """Sources from a Param: None/empty = all; letters checked against A, B, C."""
    if value is None or value == "" or value == []:
        return SOURCES
    items = [value] if isinstance(value, str) else list(value)
    chosen = sorted({str(s).strip().upper() for s in items})
    bad = [s for s in chosen if s not in TABLES]
    if bad:
        raise AggregationError(f"unknown source {bad[0]!r}: sources are {', '.join(SOURCES)}")
    return tuple(chosen)


def plan_run(
    *,
    params: Mapping[str, Any],
    batch_ids: Mapping[str, list[int]] | None,
    touched: Mapping[str, list[date]] | None,
    now: datetime,
    tariffs: TariffSet,
) -> Plan:
    """Decide a run's work.

    - ``params`` date_from/date_to (local dates, either may be given alone): recompute and
      report exactly that range.
    - Otherwise, when new batches triggered the run (``touched``: their local days per
      source): recompute those days; report from the first to the last of them.
    - Otherwise (the daily 06:00 run, or a manual run without dates): recompute and report the
      7 local days ending yesterday (late or restored readings of the week get caught up).

    ``params`` rescan: sum the planned days from their readings again first (after readings
    were changed by hand rather than by promotion or restore).
    """
    tariff = tariffs.get(params.get("tariff") or None).name
    rescan = bool(params.get("rescan"))
    sources = parse_sources(params.get("sources"))
    zone = tariffs.zone
    first, last = params.get("date_from"), params.get("date_to")
    if first or last:
        start = date.fromisoformat(str(first or last))
        end = date.fromisoformat(str(last or first))
        if end < start:
            raise AggregationError(f"date_to {end} is before date_from {start}")
        days = date_range(start, end)
        return Plan(
            {s: days for s in sources},
            start,
            end,
            sources,
            tariff,
            "requested range",
            rescan=rescan,
        )
    touched_days = {s: sorted(set(v)) for s, v in (touched or {}).items() if s in sources and v}
    if batch_ids and any(batch_ids.values()):
        every = sorted({d for v in touched_days.values() for d in v})
        ids = {s: sorted(v) for s, v in batch_ids.items() if s in sources and v}
        if not every:
            today = local_today(now, zone)
            return Plan(
                {}, today, today, sources, tariff, "new batches touched no day", ids, rescan=rescan
            )
        return Plan(
            touched_days, every[0], every[-1], sources, tariff, "new batches", ids, rescan=rescan
        )
    start, end = default_period(now, zone)
    days = date_range(start, end)
    return Plan(
        {s: days for s in sources}, start, end, sources, tariff, "daily period", rescan=rescan
    )


def batch_ids_from_events(events: Mapping[str, Iterable[Mapping[str, Any] | None]]) -> dict:
    """{source: batch ids} from triggering events keyed by asset name (readings_a → A)."""
    out: dict[str, set[int]] = {}
    by_name = {f"readings_{s.lower()}": s for s in SOURCES}
    for name, extras in events.items():
        source = by_name.get(name)
        if source is None:
            continue
        for extra in extras:
            ids = (extra or {}).get("batch_ids") or []
            out.setdefault(source, set()).update(int(i) for i in ids)
    return {s: sorted(v) for s, v in out.items()}


def touched_days(
    conn: psycopg.Connection, batch_ids: Mapping[str, list[int]], tz: str
) -> dict[str, list[date]]:
    """Local days holding readings of the given batches, per source."""
    out: dict[str, list[date]] = {}
    for source, ids in batch_ids.items():
        if not ids:
            continue
        rows = conn.execute(
            source_statement("touched_days", source), {"tz": tz, "batch_ids": list(ids)}
        ).fetchall()
        out[source] = [r[0] for r in rows]
    return out


# --------------------------------------------------------------------------------------------
# The refresh


@dataclass
class RefreshResult:
    days: int = 0
    skipped: int = 0
    summed: int = 0  # meter-days summed from readings by this refresh (days without sums)
    staged_groups: int = 0  # meter-days read from the day sums
    written: dict[str, int] = field(default_factory=dict)
    # Wall-clock seconds per step: "summing" (days summed from readings now), "day sums read"
    # (agg_meter_day, agg_profile), each daily mart's label, "roll-ups" (weeks, months,
    # regions) and "marks".
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v:,}" for k, v in self.written.items())
        return (
            f"recomputed {self.days - self.skipped:,} of {self.days:,} source-days "
            f"({self.skipped:,} unchanged since their last refresh; "
            f"{self.staged_groups:,} meter-days from day sums, {self.summed:,} of them summed "
            f"from readings now); wrote {parts}; seconds: "
            + ", ".join(f"{k} {v:.2f}" for k, v in self.seconds.items())
        )


# (label in RefreshResult.written, statements whose row counts add up to it), in order.
# The daily marts, from agg_meter_day / agg_profile, for the recomputed days; an update_<mart>
# runs only when any_<mart>.sql finds rows of those days (not on a first refresh):
DAILY_WRITES = (
    ("peak_daily", ("update_peak_daily", "insert_peak_daily")),
    ("consumption_daily", ("update_consumption_daily", "insert_consumption_daily")),
    ("load_profile_daily", ("upsert_load_profile",)),
)
# Roll-ups from mart.consumption_daily: weeks and months of the recomputed days, regions of
# every asked day (a meter may have moved region in meter.meter).
ROLLUPS = (
    ("consumption_weekly", ("upsert_weekly",)),
    ("consumption_monthly", ("upsert_monthly",)),
    ("consumption_by_region", ("upsert_region",)),
    ("stale regions deleted", ("delete_stale_regions",)),
)

# One refresh at a time (pg_advisory_xact_lock): the marts' UPDATE-then-INSERT relies on no
# other transaction inserting the same keys meanwhile.
REFRESH_LOCK = 0x6D66_6167  # "mfag"

# Rows written (mart.meter_day by resum, mart.consumption_daily by a refresh) from which the
# table is re-analyzed in the same transaction, for the statements that read it next.
ANALYZE_AFTER = 50_000
WORK_MEM = "256MB"  # SET LOCAL for resum and refresh: the per-meter sums hash in memory, no spill


def meter_days_statement(tariff_count: int, tables: Mapping[str, sql.Identifier]) -> sql.Composed:
    """sum_meter_days.sql with one peak ``FILTER`` per tariff (band bounds as parameters
    bounds_0, bounds_1, ...: sum_band_bounds.sql): per meter, channel and day the columns
    peak_kwh_<i> and peak_n_<i> ({peak_sums}); per meter-day, from its import channels, the
    arrays peak_kwh (their kWh summed) and peak_n (the most half hours of any one of them)."""
    inside = "width_bucket(interval_start, {}::timestamptz[]) %% 2 = 1"
    tariffs = range(tariff_count)

    def imported(column: str) -> str:
        """The import channels' sum of a column: the default channel's as is, others added."""
        return (
            f"coalesce(max(c.{column}) FILTER (WHERE c.channel = %(primary)s), 0) + "
            f"coalesce(sum(c.{column}) FILTER (WHERE c.kind = 'import' "
            f"AND c.channel <> %(primary)s), 0)"
        )

    return sql.SQL(statement("sum_meter_days")).format(
        peak_sums=sql.SQL(", ").join(
            sql.SQL(
                "coalesce(sum(kwh) FILTER (WHERE {inside}), 0) AS peak_kwh_{i}, "
                "count(*) FILTER (WHERE {inside})::integer AS peak_n_{i}"
            ).format(
                inside=sql.SQL(inside).format(sql.Placeholder(f"bounds_{i}")), i=sql.SQL(str(i))
            )
            for i in tariffs
        ),
        import_kwh=sql.SQL(imported("kwh")),
        import_peak_kwh=sql.SQL(", ").join(sql.SQL(imported(f"peak_kwh_{i}")) for i in tariffs),
        import_peak_n=sql.SQL(", ").join(
            sql.SQL(f"coalesce(max(c.peak_n_{i}) FILTER (WHERE c.kind = 'import'), 0)")
            for i in tariffs
        ),
        **tables,
    )


def _worth_running(conn: psycopg.Connection, name: str, params: Mapping[str, Any]) -> bool:
    """False for an update_<mart> statement when any_<mart>.sql finds no row of those days in
    the mart (it would change nothing: a first refresh of the days only inserts)."""
    if not name.startswith("update_"):
        return True
    return bool(conn.execute(statement(name.replace("update_", "any_", 1)), params).fetchone()[0])


def utc_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants [start of local day ``first``, start of the local day after ``last``)."""
    lo = datetime.combine(first, time(), zone).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return lo, hi


def source_bounds(pairs: list[tuple[str, date]], zone: ZoneInfo) -> dict[str, Any]:
    """from_a, to_a, ...: each source's UTC bounds over its days (None: no day)."""
    out: dict[str, Any] = {}
    for source in SOURCES:
        chosen = sorted(d for s, d in pairs if s == source)
        lo, hi = utc_bounds(chosen[0], chosen[-1], zone) if chosen else (None, None)
        out[f"from_{source.lower()}"], out[f"to_{source.lower()}"] = lo, hi
    return out


def fingerprint(tariffs: TariffSet) -> str:
    """What the marts of a day depend on besides its readings: zone, tariffs and their classes."""
    text = repr((tariffs.timezone, sorted(tariffs.bits().items()), tariffs.class_codes()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pairs(days: Mapping[str, Iterable[date]]) -> list[tuple[str, date]]:
    return [(s, d) for s in SOURCES for d in sorted(set(days.get(s) or ()))]


def _tuned(conn: psycopg.Connection) -> None:
    """Settings of the transaction for the scans and joins of resum and refresh."""
    conn.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(WORK_MEM)))
    # No JIT: the scans' plans cost enough for LLVM to optimise and inline ~170 functions,
    # which takes longer than it saves (0.2-0.4 s of a 4 s scan at 10M readings).
    conn.execute("SET LOCAL jit = off")


def local_days(first: datetime, last: datetime, zone: ZoneInfo) -> list[date]:
    """The local days (in ``zone``) from the one holding instant ``first`` to the one holding
    ``last``."""
    return date_range(first.astimezone(zone).date(), last.astimezone(zone).date())


def resum(conn: psycopg.Connection, days: Mapping[str, Iterable[date]], tariffs: TariffSet) -> int:
    """Compute the day sums (mart.meter_day, mart.slot_day, mart.day_sum; V013) of the given
    local days per source from their readings; returns the meter-days summed.

    Writers of readings call it for the days they wrote, in their own transaction (promotion,
    restore); a refresh calls it for days without sums under its tariffs. Runs in a savepoint
    when the connection is in a transaction, else in a transaction of its own. Raises
    :class:`AggregationError` when a reading of those days is off the 30-minute grid (nothing
    written).
    """
    pairs = _pairs(days)
    if not pairs:
        return 0
    zone = tariffs.zone
    utc_from, utc_to = utc_bounds(min(d for _s, d in pairs), max(d for _s, d in pairs), zone)
    tables = {f"readings_{s.lower()}": sql.Identifier(SCHEMA, t) for s, t in TABLES.items()}
    bounds = source_bounds(pairs, zone)
    bits = list(tariffs.bits().values())
    with conn.transaction():
        _tuned(conn)
        conn.execute(statement("sum_tables"))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO sum_days (source, local_date) VALUES (%s, %s)", pairs)
        conn.execute(
            statement("sum_slots"),
            {
                "tz": tariffs.timezone,
                "codes": tariffs.class_codes(),
                "utc_from": utc_from,
                "utc_to": utc_to,
            },
        )
        conn.execute(sql.SQL(statement("sum_read")).format(**tables), bounds)
        off_grid = conn.execute(statement("sum_off_grid")).fetchall()
        if off_grid:
            detail = "; ".join(f"source {s}: {n:,} (first {t.isoformat()})" for s, n, t in off_grid)
            raise AggregationError(
                f"readings off the 30-minute grid, not aggregated: {detail}; "
                "interval_start must be a whole half hour"
            )
        starts, dates = conn.execute(statement("sum_day_starts")).fetchone()
        scan = {
            **bounds,
            "primary": DEFAULT_CHANNEL,
            "day_starts": starts,
            "day_dates": dates,
            **{
                f"bounds_{i}": conn.execute(statement("sum_band_bounds"), {"bit": b}).fetchone()[0]
                for i, b in enumerate(bits)
            },
        }
        summed = conn.execute(meter_days_statement(len(bits), tables), scan).rowcount
        conn.execute(statement("sum_profile"))
        params = {"fingerprint": fingerprint(tariffs)}
        for name in ("save_meter_day", "save_slot_day", "save_day_sum"):
            conn.execute(statement(name), params)
        if summed >= ANALYZE_AFTER:
            # The refresh that follows reads these rows: fresh statistics, not the table as it
            # was (empty on a first summing), or its joins are planned for a few rows.
            conn.execute("ANALYZE mart.meter_day")
        conn.execute("DROP TABLE sum_days, sum_slot, sum_read, sum_meter_day, sum_profile")
    log.info("day sums: %s meter-days of %s source-days summed from readings", summed, len(pairs))
    return summed


def resum_spans(
    conn: psycopg.Connection,
    spans: Mapping[str, tuple[datetime, datetime]],
    tariffs: TariffSet | None = None,
) -> int:
    """What a writer of readings calls, in its transaction: :func:`resum` of every local day
    (tariffs' zone) that instants of each source's span ``(first, last)`` fall on.

    ``tariffs``: the configured ones when None. When tariffs.yaml cannot be read, the days'
    sums are dropped instead (forget_day_sums.sql), so the next refresh sums them from the
    readings (and fails naming the problem while it lasts): a broken tariff file never holds
    readings back.
    """
    if tariffs is None:
        from meterflow import tariffs as tariff_config

        try:
            tariffs = tariff_config.load()
        except tariff_config.TariffError as exc:
            log.warning("day sums left to the next refresh: %s", exc)
            for source, (first, last) in spans.items():
                conn.execute(
                    statement("forget_day_sums"), {"source": source, "first": first, "last": last}
                )
            return 0
    days = {s: local_days(first, last, tariffs.zone) for s, (first, last) in spans.items()}
    return resum(conn, days, tariffs)


def refresh(
    conn: psycopg.Connection,
    days: Mapping[str, Iterable[date]],
    tariffs: TariffSet,
    *,
    rescan: bool = False,
) -> RefreshResult:
    """Recompute every mart for the given local days per source, in one transaction, from their
    day sums (:func:`resum`).

    Days without sums under these tariffs (or every day when ``rescan``) are summed from their
    readings first. Days whose sums did not change since their last refresh (mart.refresh_mark)
    are skipped; their regions are still rolled up again. Raises :class:`AggregationError` when
    a reading of a day summed here is off the 30-minute grid.
    """
    result = RefreshResult()
    pairs = _pairs(days)
    result.days = len(pairs)
    if not pairs:
        return result
    params: dict[str, Any] = {
        "tz": tariffs.timezone,
        "date_from": min(d for _s, d in pairs),
        "date_to": max(d for _s, d in pairs),
        "fingerprint": fingerprint(tariffs),
        "rescan": rescan,
    }
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (REFRESH_LOCK,))
        _tuned(conn)
        # The marts' UPDATE/INSERT join agg_meter_day to the mart rows of its days: hash joins
        # (the planner otherwise sorts both sides on the text keys for a merge join).
        conn.execute("SET LOCAL enable_mergejoin = off")
        conn.execute(statement("stage_tables"))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO agg_days (source, local_date) VALUES (%s, %s)", pairs)
            cur.executemany("INSERT INTO agg_asked (source, local_date) VALUES (%s, %s)", pairs)
        stale: dict[str, list[date]] = {}
        for s, d in conn.execute(statement("stale_days"), params):
            stale.setdefault(s, []).append(d)
        if stale:
            with _timed(result, "summing"):
                result.summed = resum(conn, stale, tariffs)
        conn.execute(statement("day_versions"))
        result.skipped = conn.execute(statement("unchanged_days"), params).rowcount
        if result.skipped < result.days:
            _recompute(conn, tariffs, params, result)
        else:
            result.written.update({label: 0 for label, _names in DAILY_WRITES})
        with _timed(result, "roll-ups"):
            for label, names in ROLLUPS:
                result.written[label] = sum(
                    conn.execute(statement(n), params).rowcount for n in names
                )
    log.info(result.summary())
    return result


def _recompute(
    conn: psycopg.Connection,
    tariffs: TariffSet,
    params: Mapping[str, Any],
    result: RefreshResult,
) -> None:
    """Write the daily marts of the days of agg_days from their day sums, and their marks."""
    with _timed(result, "day sums read"):
        result.staged_groups = conn.execute(statement("stage_meter_days"), params).rowcount
        conn.execute(statement("stage_profile"))
    # Hash joins between agg_meter_day and the mart rows of its days, never a nested loop: on
    # empty or freshly emptied marts the planner may think the mart has a page and probe it by
    # seq scan once per new row while the INSERT makes it grow (minutes at 10M readings).
    conn.execute("SET LOCAL enable_nestloop = off")
    # peak_daily one tariff at a time, in name order: with agg_meter_day's order that is the
    # primary key's, so the index grows at its right edge.
    order = sorted((name, i) for i, name in enumerate(tariffs.bits(), start=1))
    for label, names in DAILY_WRITES:
        jobs = (
            [{**params, "tariff": t, "i": i} for t, i in order]
            if label == "peak_daily"
            else [params]
        )
        with _timed(result, label):
            result.written[label] = sum(
                conn.execute(statement(name), p).rowcount
                for p in jobs
                for name in names
                if _worth_running(conn, name, p)
            )
    conn.execute("SET LOCAL enable_nestloop = on")
    with _timed(result, "marks"):
        if result.written["consumption_daily"] >= ANALYZE_AFTER:
            # The roll-ups read mart.consumption_daily: fresh statistics, or the planner, seeing
            # the table as it was (empty on a first refresh), loops over it row by row.
            conn.execute("ANALYZE mart.consumption_daily")
        conn.execute(statement("save_marks"), params)


@contextmanager
def _timed(result: RefreshResult, step: str) -> Iterator[None]:
    """Add the block's wall-clock seconds to ``result.seconds[step]``."""
    start = perf_counter()
    try:
        yield
    finally:
        result.seconds[step] = result.seconds.get(step, 0.0) + perf_counter() - start


# --------------------------------------------------------------------------------------------
# Report data (charts)


def report_data(conn: psycopg.Connection, plan: Plan) -> dict[str, list[tuple]]:
    """The rows every peak-report chart needs, for the plan's period, sources and tariff."""
    params = {
        "tariff": plan.tariff,
        "sources": list(plan.sources),
        "date_from": plan.period_start,
        "date_to": plan.period_end,
    }
    return {
        name: conn.execute(statement(f"report_{name}"), params).fetchall()
        for name in ("peak_means", "load_profile", "meter_days", "regions")
    }


# --------------------------------------------------------------------------------------------
# meter_consumption_report: one meter over a named period


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime  # UTC, inclusive: the first interval_start of the period
    end: datetime  # UTC, exclusive
    label: str  # for titles and file names, in local time

    @property
    def intervals(self) -> int:
        return int((self.end - self.start).total_seconds() // 1800)


def period_bounds(name: str, now: datetime, zone: ZoneInfo) -> Period:
    """The UTC span [start, end) of a named period around ``now``, in local calendar terms.

    previous_hour: the last complete clock hour (2 intervals); current_day / current_week (ISO,
    from Monday) / current_month: from the local start of the day / week / month to its end
    (readings exist only up to now); previous_month: the whole calendar month before this one.
    Spans follow local midnights, so a day with a clock change holds 46 or 50 intervals.
    """
    if now.tzinfo is None:
        raise AggregationError("now must be timezone-aware")
    local = now.astimezone(zone)

    def at(d: date) -> datetime:
        return datetime.combine(d, time(), zone).astimezone(UTC)

    if name == "previous_hour":
        end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=1)
        label = start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        return Period(name, start, end, label)
    today = local.date()
    if name == "current_day":
        return Period(name, at(today), at(today + timedelta(days=1)), today.isoformat())
    if name == "current_week":
        monday = today - timedelta(days=today.weekday())
        iso = monday.isocalendar()
        label = f"{iso.year}-W{iso.week:02d}"
        return Period(name, at(monday), at(monday + timedelta(days=7)), label)
    first = today.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    if name == "current_month":
        return Period(name, at(first), at(next_first), first.strftime("%Y-%m"))
    if name == "previous_month":
        prev = (first - timedelta(days=1)).replace(day=1)
        return Period(name, at(prev), at(first), prev.strftime("%Y-%m"))
    raise AggregationError(f"unknown period {name!r}: one of {', '.join(PERIODS)}")


def meter_source(conn: psycopg.Connection, meter_id: str) -> str:
    """The source of a registered meter; an unknown meter is an error naming it."""
    row = conn.execute(statement("meter_source"), {"meter_id": meter_id}).fetchone()
    if not row:
        raise AggregationError(f"meter {meter_id!r} is not in meter.meter (no readings yet?)")
    return row[0]


class MeterReading(NamedTuple):
    """One reading of one channel of a meter (meter_consumption_report)."""

    interval_start: datetime  # UTC
    channel: str  # E1, B1, Q1, ...
    kind: str  # meterflow.models.ChannelKind: import, export, non_energy
    kwh: float  # a non-energy channel's value is in its own unit (kVArh, ...), never kWh
    quality: str


def meter_intervals(conn: psycopg.Connection, meter_id: str, period: Period) -> list[MeterReading]:
    """One meter's readings of every channel in the period, by interval start and channel."""
    source = meter_source(conn, meter_id)
    rows = conn.execute(
        source_statement("meter_intervals", source),
        {"meter_id": meter_id, "utc_from": period.start, "utc_to": period.end},
    ).fetchall()
    return [MeterReading(r[0], r[1], r[2], float(r[3]), r[4]) for r in rows]


# --------------------------------------------------------------------------------------------
# Report files


def report_dir(reports_dir: Path | str, plan: Plan) -> Path:
    """<reports_dir>/<period_end>/: the charts of the report that ends on that local day."""
    return Path(reports_dir) / plan.period_end.isoformat()


def peak_figures(conn: psycopg.Connection, plan: Plan, tariffs: TariffSet) -> dict[str, Figure]:
    """The four peak-report charts of the plan as matplotlib Figures, by file name."""
    from meterflow import charts

    data = report_data(conn, plan)
    tariff = tariffs.get(plan.tariff)
    start, end, zone = plan.period_start, plan.period_end, tariffs.timezone
    log.info(
        "report data for %s to %s (tariff %s, sources %s): %d source-days, %d meters",
        start,
        end,
        tariff.name,
        ",".join(plan.sources),
        len(data["peak_means"]),
        len({r[0] for r in data["meter_days"]}),
    )
    return {
        f"peak_means_{tariff.name}.png": charts.peak_means_chart(
            data["peak_means"], tariff, start, end, zone
        ),
        f"load_profile_{tariff.name}.png": charts.load_profile_chart(
            data["load_profile"], tariff, start, end, zone
        ),
        "meter_heatmap.png": charts.heatmap_chart(data["meter_days"], start, end),
        "consumption_by_region.png": charts.regions_chart(data["regions"], start, end),
    }


def write_peak_charts(
    conn: psycopg.Connection, plan: Plan, tariffs: TariffSet, reports_dir: Path | str
) -> list[Path]:
    """The four peak-report charts of the plan as PNG files; returns their paths."""
    from meterflow import charts

    out = report_dir(reports_dir, plan)
    paths = [
        charts.save(fig, out / name) for name, fig in peak_figures(conn, plan, tariffs).items()
    ]
    log.info("wrote %d charts to %s", len(paths), out)
    return paths


def upload(paths: Iterable[Path], reports_dir: Path | str, bucket: str, s3) -> list[str]:
    """Put report files on S3 under reports/<path below reports_dir>; returns the keys."""
    from meterflow import config

    area = config.s3_prefix("reports")
    keys = []
    root = Path(reports_dir)
    for path in paths:
        key = f"{area}/" + Path(path).relative_to(root).as_posix()
        content_type = "image/png" if path.suffix == ".png" else "text/csv"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type)
        keys.append(key)
    return keys


def write_consumption_report(
    conn: psycopg.Connection,
    meter_id: str,
    period: Period,
    zone: ZoneInfo,
    reports_dir: Path | str,
    day: date,
) -> list[Path]:
    """One meter's readings in the period as a CSV (every channel, each with its kind) and a
    chart (import, and export beside it where the meter has any) under <reports_dir>/<day>/."""
    import csv

    from meterflow import charts

    rows = meter_intervals(conn, meter_id, period)
    out = Path(reports_dir) / day.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    stem = f"consumption_{meter_id}_{period.name}_{period.label.replace(' ', 'T').replace(':', '')}"
    csv_path = out / f"{stem}.csv"
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for r in rows:
            writer.writerow(
                [
                    meter_id,
                    r.channel,
                    r.kind,
                    r.interval_start.astimezone(UTC).isoformat(),
                    r.interval_start.astimezone(zone).isoformat(),
                    f"{r.kwh:g}",
                    r.quality,
                ]
            )
    os.replace(tmp, csv_path)
    imported = sum(r.kwh for r in rows if r.kind == ChannelKind.IMPORT)
    exported = sum(r.kwh for r in rows if r.kind == ChannelKind.EXPORT)
    daily = period.name in ("current_week", "current_month", "previous_month")
    fig = charts.consumption_chart(
        rows, meter_id, f"{period.name} {period.label}", zone, daily=daily
    )
    png = charts.save(fig, out / f"{stem}.png")
    log.info(
        "%s %s (%s to %s UTC): %d readings of channels %s, import %.3f kWh, export %.3f kWh → "
        "%s, %s",
        meter_id,
        period.name,
        period.start,
        period.end,
        len(rows),
        ",".join(sorted({r.channel for r in rows})) or "none",
        imported,
        exported,
        csv_path,
        png,
    )
    return [png, csv_path]


# --------------------------------------------------------------------------------------------
# The DAGs' steps (dags/meter_peak_report.py, dags/meter_consumption_report.py)


def _s3_client():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from meterflow import config

    return S3Hook(aws_conn_id=config.get("aws_conn_id")).get_conn()


def plan_for_run(
    params: Mapping[str, Any],
    events: Mapping[str, Iterable[Mapping[str, Any] | None]],
    now: datetime,
) -> Plan:
    """A meter_peak_report run's plan from its Params and triggering READINGS events.

    ``events``: the extras of the triggering asset events by asset name (readings_a, ...).
    """
    from meterflow import tariffs as tariff_config
    from meterflow import warehouse

    tariffs = tariff_config.load()
    batch_ids = batch_ids_from_events(events)
    touched = None
    if batch_ids and not (params.get("date_from") or params.get("date_to")):
        with warehouse.connect(autocommit=True) as conn:
            touched = touched_days(conn, batch_ids, tariffs.timezone)
    plan = plan_run(params=params, batch_ids=batch_ids, touched=touched, now=now, tariffs=tariffs)
    log.info(
        "plan (%s): recompute %d source-days; report %s to %s, sources %s, tariff %s%s",
        plan.reason,
        plan.day_count,
        plan.period_start,
        plan.period_end,
        ",".join(plan.sources),
        plan.tariff,
        f"; batches {plan.batch_ids}" if plan.batch_ids else "",
    )
    return plan


def refresh_for_plan(plan: Plan) -> RefreshResult:
    """Recompute the marts for the plan's days (one transaction)."""
    from meterflow import tariffs as tariff_config
    from meterflow import warehouse

    with warehouse.connect(autocommit=True) as conn:
        return refresh(conn, plan.days, tariff_config.load(), rescan=plan.rescan)


def publish_peak_charts(plan: Plan) -> dict[str, list[str]]:
    """Write the plan's charts under <reports_dir>/<period_end>/ and put them on S3 under
    reports/; returns {"files": local paths, "keys": S3 keys}."""
    from meterflow import config, warehouse
    from meterflow import tariffs as tariff_config

    reports = config.get("reports_dir")
    with warehouse.connect(autocommit=True) as conn:
        paths = write_peak_charts(conn, plan, tariff_config.load(), reports)
    bucket = config.get("s3_bucket")
    keys = upload(paths, reports, bucket, _s3_client())
    log.info("uploaded %d charts to s3://%s/%s", len(keys), bucket, keys[0].rsplit("/", 1)[0])
    return {"files": [str(p) for p in paths], "keys": keys}


def consumption_report(meter_id: str, period_name: str, now: datetime) -> dict[str, list[str]]:
    """meter_consumption_report: one meter's period as CSV + chart, locally and on S3."""
    from meterflow import config, warehouse

    meter_id = meter_id.strip()
    if not meter_id:
        raise AggregationError("meter_id is empty: give a meter id such as SMR89134A")
    zone = ZoneInfo(config.get("local_tz"))
    period = period_bounds(period_name, now, zone)
    reports = config.get("reports_dir")
    with warehouse.connect(autocommit=True) as conn:
        paths = write_consumption_report(
            conn, meter_id, period, zone, reports, local_today(now, zone)
        )
    bucket = config.get("s3_bucket")
    keys = upload(paths, reports, bucket, _s3_client())
    for path, key in zip(paths, keys, strict=True):
        log.info("report file %s (s3://%s/%s)", path, bucket, key)
    return {"files": [str(p) for p in paths], "keys": keys}
