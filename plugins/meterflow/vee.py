"""Validation, estimation and editing (VEE) of the promoted readings (issue 23, docs/vee.md).

For the local days asked (a closed day, a late batch's days, a manual range), per source and
in one transaction each, with the SQL files of include/sql/vee/:

1. ``reconcile.sql``: actuals win. A current estimate whose half hour now holds another reading
   (promotion replaced it: it ranks A over E) is closed in audit.vee_estimate, kept there
   with the value that replaced it.
2. The series judged (``series.sql``): energy channels (import E…, export B…) of meters that
   reported in the days or shortly before; non-energy channels are never judged or estimated.
3. Validation, each series against its own history (``history.sql``); a suspect reading is
   kept as it is and flagged in audit.vee_flag with its rule's code (include/config/vee.yaml):
   SPIKE, HIGH, LOW (``flag_levels.sql``), FLAT, ZERO (``flag_runs.sql``), GAP
   (``flag_gaps.sql``).
4. Estimation of the missing half hours (``missing.sql``, runs in ``gaps.sql``): LINEAR between
   the readings either side for gaps up to 1 hour, LIKE_DAY (same weekday's profile of the
   previous weeks, scaled to the day's own level) for longer ones up to the horizon. Local days
   keep their 46/50 half hours on clock changes: the slots are UTC half hours of the local day.
5. Writing (``revise.sql``, ``audit.sql``, ``write.sql``): estimates into the readings with
   quality E and batch :data:`VEE_BATCH_ID`, their method and inputs into audit.vee_estimate;
   a re-run over unchanged inputs writes nothing.
6. The day sums of the days whose readings changed are summed again (meterflow.aggregation),
   mart.vee_daily is kept (``daily.sql``) and, when asked, the marts of those days refreshed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from meterflow import CONFIG_DIR, SQL_DIR
from meterflow.models import VEE_BATCH_ID

log = logging.getLogger(__name__)

VEE_SQL = SQL_DIR / "vee"
VEE_FILE = CONFIG_DIR / "vee.yaml"
SCHEMA = "meter"
TABLES: dict[str, str] = {"A": "readings_a", "B": "readings_b", "C": "readings_c"}
SOURCES = tuple(TABLES)
HALF_HOUR = timedelta(minutes=30)


class VeeError(ValueError):
    """vee.yaml or a run's request is invalid; the message says which key or value."""


def statement(name: str, source: str | None = None) -> sql.Composable:
    text = (VEE_SQL / f"{name}.sql").read_text(encoding="utf-8")
    if source is None:
        return sql.SQL(text)
    return sql.SQL(text).format(table=sql.Identifier(SCHEMA, TABLES[source]))


# --------------------------------------------------------------------------------------------
# vee.yaml


@dataclass(frozen=True)
class VeeConfig:
    """include/config/vee.yaml, validated (see the file for the meaning of every key)."""

    doc: Mapping[str, Any]
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def get(self, dotted: str) -> Any:
        node: Any = self.doc
        for key in dotted.split("."):
            if not isinstance(node, Mapping) or key not in node:
                raise VeeError(f"vee.yaml: missing key {dotted}")
            node = node[key]
        return node

    def rule(self, name: str) -> Mapping[str, Any]:
        return self.get(f"validation.rules.{name}")

    def method(self, name: str) -> Mapping[str, Any]:
        return self.get(f"estimation.methods.{name}")

    def codes(self) -> dict[str, str]:
        """Rule and method names → their codes."""
        out = {n: str(r["code"]) for n, r in self.get("validation.rules").items()}
        out.update({n: str(m["code"]) for n, m in self.get("estimation.methods").items()})
        return out


_NUMBERS = (
    "close_delay_hours",
    "lookback_days",
    "reported_within_days",
    "validation.history_days",
    "validation.min_history",
    "validation.rules.spike.neighbour_factor",
    "validation.rules.spike.level_factor",
    "validation.rules.spike.min_kwh",
    "validation.rules.flat.intervals",
    "validation.rules.zero.intervals",
    "validation.rules.high.sigmas",
    "validation.rules.low.sigmas",
    "estimation.decimals",
    "estimation.horizon_intervals",
    "estimation.methods.linear.max_intervals",
    "estimation.methods.like_day.weeks",
    "estimation.methods.like_day.min_known",
    "estimation.methods.like_day.scale_min",
    "estimation.methods.like_day.scale_max",
)


def load_config(path: Path | str = VEE_FILE) -> VeeConfig:
    """Read and check vee.yaml; the zone defaults to the local_tz setting."""
    import yaml

    from meterflow import config

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise VeeError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise VeeError(f"{path.name}: expected a mapping")
    cfg = VeeConfig(doc, str(doc.get("timezone") or config.get("local_tz")))
    for key in _NUMBERS:
        value = cfg.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise VeeError(f"{path.name}: {key}: expected a number >= 0, got {value!r}")
    codes = list(cfg.codes().values())
    if len(set(codes)) != len(codes):
        raise VeeError(f"{path.name}: rule and method codes must differ: {codes}")
    try:
        ZoneInfo(cfg.timezone)
    except (KeyError, ValueError) as exc:
        raise VeeError(f"{path.name}: timezone: unknown zone {cfg.timezone!r}") from exc
    return cfg


# --------------------------------------------------------------------------------------------
# Which days


def local_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants [start of local day ``first``, start of the local day after ``last``)."""
    lo = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    return lo, hi


def last_closed_day(now: datetime, cfg: VeeConfig) -> date:
    """The latest local day that ended at least close_delay_hours before ``now``."""
    delay = timedelta(hours=float(cfg.get("close_delay_hours")))
    return (now - delay).astimezone(cfg.zone).date() - timedelta(days=1)


def plan_days(
    params: Mapping[str, Any],
    touched: Iterable[date],
    now: datetime,
    cfg: VeeConfig,
) -> tuple[date, date] | None:
    """The local days [first, last] of a run, or None when there is nothing to do.

    Params date_from/date_to (either alone: that one day) win; else the days new batches
    touched (``touched``), clipped to closed days within the horizon; else (the daily run)
    the lookback_days ending with the last closed day.
    """
    closed = last_closed_day(now, cfg)
    first, last = params.get("date_from"), params.get("date_to")
    if first or last:
        lo = date.fromisoformat(str(first or last))
        hi = date.fromisoformat(str(last or first))
        if hi < lo:
            raise VeeError(f"date_to {hi} is before date_from {lo}")
        return lo, hi
    days = sorted(set(touched))
    if days:
        horizon = int(cfg.get("estimation.horizon_intervals")) // 48 + 1
        days = [d for d in days if closed - timedelta(days=horizon) <= d <= closed]
        return (days[0], days[-1]) if days else None
    lookback = max(int(cfg.get("lookback_days")), 1)
    return closed - timedelta(days=lookback - 1), closed


# --------------------------------------------------------------------------------------------
# A run


@dataclass
class VeeResult:
    first: date | None = None
    last: date | None = None
    series: int = 0
    replaced: int = 0  # estimates closed because an actual arrived
    revised: int = 0  # estimates closed because a re-estimate differs
    written: int = 0  # readings inserted or changed
    flags: dict[str, int] = field(default_factory=dict)
    estimates: dict[str, int] = field(default_factory=dict)
    unestimated: int = 0  # missing half hours beyond the horizon or without like-day data

    def summary(self) -> str:
        return (
            f"VEE {self.first}..{self.last}: {self.series:,} series; flags "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(self.flags.items()))
            + "; estimates "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(self.estimates.items()))
            + f"; {self.unestimated:,} missing half hours not estimated; "
            f"{self.written:,} readings written, {self.revised:,} estimates revised, "
            f"{self.replaced:,} replaced by actuals"
        )


def _dec(value: Any) -> Decimal:
    """A threshold as numeric (a float parameter would make the SQL double precision)."""
    return Decimal(str(value))


def _params(cfg: VeeConfig, source: str, first: date, last: date, **extra: Any) -> dict:
    utc_from, utc_to = local_bounds(first, last, cfg.zone)
    like = cfg.method("like_day")
    weeks = int(like["weeks"])
    hist = int(cfg.get("validation.history_days"))
    codes = cfg.codes()
    spike = cfg.rule("spike")
    return {
        "source": source,
        "tz": cfg.timezone,
        "day_from": first,
        "day_to": last,
        "utc_from": utc_from,
        "utc_to": utc_to,
        "seen_from": utc_from - timedelta(days=int(cfg.get("reported_within_days"))),
        "hist_from": utc_from - timedelta(days=hist),
        "vee_batch": VEE_BATCH_ID,
        "decimals": int(cfg.get("estimation.decimals")),
        "horizon": int(cfg.get("estimation.horizon_intervals")),
        "linear_max": int(cfg.method("linear")["max_intervals"]),
        "weeks": weeks,
        "min_known": int(like["min_known"]),
        "scale_min": _dec(like["scale_min"]),
        "scale_max": _dec(like["scale_max"]),
        "min_history": int(cfg.get("validation.min_history")),
        "spike_neighbour": _dec(spike["neighbour_factor"]),
        "spike_level": _dec(spike["level_factor"]),
        "spike_min": _dec(spike["min_kwh"]),
        "high_sigmas": _dec(cfg.rule("high")["sigmas"]),
        "low_sigmas": _dec(cfg.rule("low")["sigmas"]),
        "flat_n": int(cfg.rule("flat")["intervals"]),
        "zero_n": int(cfg.rule("zero")["intervals"]),
        "run_n": max(int(cfg.rule("flat")["intervals"]), int(cfg.rule("zero")["intervals"])),
        **{name: code for name, code in codes.items()},
        "code": codes["gap"],
        **extra,
    }


def run(
    conn: psycopg.Connection,
    first: date,
    last: date,
    *,
    meter: str | None = None,
    sources: Iterable[str] = SOURCES,
    run_id: str | None = None,
    cfg: VeeConfig | None = None,
    validate: bool = True,
) -> VeeResult:
    """Validate and estimate local days [first, last] of every source (or one meter); each
    source in its own transaction, with the day sums of the days it changed."""
    cfg = cfg or load_config()
    if last < first:
        raise VeeError(f"date_to {last} is before date_from {first}")
    result = VeeResult(first, last)
    chosen = [s for s in SOURCES if s in set(sources)]
    if meter:
        chosen = [s for s in chosen if s == meter[-1:]] or chosen
    for source in chosen:
        params = _params(cfg, source, first, last, meter=meter or None, run_id=run_id)
        run_source(conn, params, result, validate=validate)
    log.info(result.summary())
    return result


def _count(result: dict[str, int], key: str, n: int) -> None:
    if n:
        result[key] = result.get(key, 0) + n


def run_source(
    conn: psycopg.Connection, params: dict[str, Any], result: VeeResult, *, validate: bool = True
) -> None:
    """One source's VEE in one transaction (see the module doc)."""
    source = params["source"]
    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL jit = off")
        # Hash joins between the run's temporary tables and the readings: the planner, seeing
        # grouped temporary rows, otherwise loops over them (minutes at 2,000 meters).
        conn.execute("SET LOCAL enable_nestloop = off")
        conn.execute(statement("setup"))
        table = f"{SCHEMA}.{TABLES[source]}"
        conn.execute(
            "SELECT meter.ensure_partitions(%s::regclass, %s, %s)",
            (table, params["utc_from"], params["utc_to"]),
        )
        replaced = conn.execute(statement("reconcile", source), params).rowcount
        result.replaced += replaced
        conn.execute(statement("slots"), params)
        result.series += conn.execute(statement("series", source), params).rowcount
        conn.execute("ANALYZE vee_series")
        conn.execute(statement("missing", source), params)
        conn.execute("ANALYZE vee_missing")
        conn.execute(statement("gaps"), params)
        conn.execute("ANALYZE vee_gap")
        for name in ("gap_near", "gap_far", "gap_method"):
            conn.execute(statement(name, source), params)
        conn.execute(statement("estimate_linear"), params)
        _like_day(conn, source, params)
        for method, n in conn.execute("SELECT method, count(*) FROM vee_est GROUP BY method"):
            _count(result.estimates, method, n)
        result.unestimated += conn.execute(
            "SELECT count(*) FROM vee_missing m WHERE NOT EXISTS (SELECT 1 FROM vee_est e "
            "WHERE e.meter_id = m.meter_id AND e.channel = m.channel "
            "AND e.interval_start = m.interval_start)"
        ).fetchone()[0]
        result.revised += conn.execute(statement("revise"), params).rowcount
        conn.execute(statement("audit"), params)
        written = [r[0] for r in conn.execute(statement("write", source), params).fetchall()]
        result.written += len(written)
        flagged = conn.execute(statement("flag_gaps"), params).rowcount
        _count(result.flags, params["gap"], flagged)
        if validate:
            conn.execute(statement("history", source), params)
            for name in ("flag_levels", "flag_runs"):
                conn.execute(statement(name, source), params)
            for rule, n in conn.execute(
                "SELECT rule, count(*) FROM audit.vee_flag WHERE run_id IS NOT DISTINCT FROM "
                "%(run_id)s AND source = %(source)s AND rule <> %(gap)s "
                "AND local_date BETWEEN %(day_from)s AND %(day_to)s GROUP BY rule",
                params,
            ):
                _count(result.flags, rule, n)
        if written or replaced:
            _resum(conn, source, written or [params["utc_from"], params["utc_to"] - HALF_HOUR])
        conn.execute(statement("daily", source), params)


def _like_day(conn: psycopg.Connection, source: str, params: dict[str, Any]) -> None:
    """LIKE_DAY estimates (like_*.sql, estimate_like_day.sql): the like days are read one week
    at a time, each as one range of the source table hash-joined to the days that need them."""
    conn.execute(statement("like_need"), params)
    conn.execute("ANALYZE vee_need")
    zone = ZoneInfo(params["tz"])
    for w in range(1, params["weeks"] + 1):
        back = timedelta(days=7 * w)
        lo, hi = local_bounds(params["day_from"] - back, params["day_to"] - back, zone)
        conn.execute(
            statement("like_read", source), {**params, "w": w, "like_lo": lo, "like_hi": hi}
        )
    conn.execute("ANALYZE vee_like")
    conn.execute(statement("like_level", source), params)
    conn.execute("ANALYZE vee_level")
    conn.execute(statement("estimate_like_day"), params)


def _resum(conn: psycopg.Connection, source: str, instants: list[datetime]) -> None:
    """Day sums (mart.meter_day...) of the local days holding the changed readings."""
    from meterflow import aggregation

    aggregation.resum_spans(conn, {source: (min(instants), max(instants))})


def refresh_marts(conn: psycopg.Connection, first: date, last: date) -> dict[str, int]:
    """Recompute the marts of local days [first, last] (meterflow.aggregation.refresh) after a
    run changed readings: consumption, peak and the rest see the estimates."""
    from meterflow import aggregation, tariffs

    days = {s: aggregation.date_range(first, last) for s in SOURCES}
    return aggregation.refresh(conn, days, tariffs.load()).written


# --------------------------------------------------------------------------------------------
# What others read: the share of estimated readings


@dataclass(frozen=True)
class DayShare:
    local_date: date
    readings: int
    estimated: int
    flagged: int

    @property
    def share(self) -> float:
        return self.estimated / self.readings if self.readings else 0.0


def estimated_share(
    conn: psycopg.Connection, first: date, last: date, meter_id: str | None = None
) -> list[DayShare]:
    """Per local day of [first, last]: readings, estimates and flagged readings of the energy
    channels of one meter (or of every meter), as of the last VEE run over each day. For the
    meter pages, the marts' readers and the sponsor's email."""
    rows = conn.execute(
        statement("share"), {"day_from": first, "day_to": last, "meter": meter_id}
    ).fetchall()
    return [DayShare(*r) for r in rows]


def share_line(shares: list[DayShare]) -> str | None:
    """One sentence for a report: the period's share of estimated readings; None: no VEE."""
    readings = sum(s.readings for s in shares)
    if not readings:
        return None
    estimated = sum(s.estimated for s in shares)
    flagged = sum(s.flagged for s in shares)
    return (
        f"Estimated readings: {estimated:,} of {readings:,} ({estimated / readings:.2%}); "
        f"{flagged:,} readings flagged as suspect (kept as read)."
    )


def connect() -> psycopg.Connection:
    from meterflow import warehouse

    return warehouse.connect(autocommit=True)


def run_for_dag(
    params: Mapping[str, Any], events: Mapping[str, list], now: datetime, run_id: str
) -> dict[str, Any]:
    """What meter_vee's task does: plan the days, run, refresh the marts of changed days."""
    from meterflow import aggregation

    cfg = load_config()
    batch_ids = aggregation.batch_ids_from_events(events)
    with connect() as conn:
        touched = aggregation.touched_days(conn, batch_ids, cfg.timezone) if batch_ids else {}
        days = plan_days(params, [d for ds in touched.values() for d in ds], now, cfg)
        if days is None:
            return {"skipped": "no closed day to judge"}
        meter = params.get("meter") or None
        result = run(conn, days[0], days[1], meter=meter, run_id=run_id, cfg=cfg)
        written: dict[str, int] = {}
        if result.written or result.replaced:
            written = refresh_marts(conn, days[0], days[1])
    out = {k: v for k, v in result.__dict__.items() if k not in {"first", "last"}}
    return {**out, "first": days[0].isoformat(), "last": days[1].isoformat(), "marts": written}
