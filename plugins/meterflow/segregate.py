"""Segregation: validated staging batches promoted into meter.readings_a | _b | _c.

One batch is one transaction. For each source the batch holds, the SQL files of
``include/sql/segregate/`` run in this order:

1. ``lock_batch.sql``, ``lock_segregation.sql``: take the batch (still 'validated'?) and the
   segregation lock.
2. ``register_meters.sql``: meters seen for the first time go into meter.meter.
3. per source, ``partition_months.sql``: the months its readings span, with or without a
   partition yet. Months with one: ``classify_source.sql`` counts the readings that meet a
   stored one and how many of those replace it; ``supersede_source.sql`` replaces them;
   ``insert_source.sql`` adds the readings whose (meter, interval) is new. Months without one
   (nothing stored there): ``load_partition_*.sql`` load the rows into new, index-less month
   tables, build the indexes once, and attach the tables as the source table's partitions —
   about 3× faster than inserting into indexed partitions (docs/segregation.md).
4. Reconciliation: promoted (new) + superseded (replaced a stored reading) + kept (a stored,
   better reading stayed) must equal the rows validated (audit.load_batch.rows_staged), and
   the rows the UPDATE replaced must equal the rows classified as replacing. Otherwise the
   transaction rolls back, the batch stays 'validated' with the reason in
   audit.load_batch.error, and :class:`ReconciliationError` is raised.
5. Day sums (``meterflow.aggregation.resum``, V013) of the local days the batch wrote, for
   the marts (aggregate on write); an off-grid reading raises here and nothing is promoted.
6. ``mark_promoted.sql``: counts stored on audit.load_batch, status 'promoted'.

Upsert rule: a batch's reading replaces a stored one when its quality ranks higher
(:attr:`meterflow.models.Quality.rank`, ``meter.quality_rank`` in SQL: A > S, F > E), or ranks
the same and its batch is not older (higher or equal batch id) — so promoting batches out of
load order never lets an older reading overwrite a newer one of the same quality.

Table names come from :data:`TABLES`, a fixed mapping; values are bound parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import psycopg
from psycopg import sql

from meterflow import SQL_DIR, aggregation, config, warehouse
from meterflow.models import SOURCES, BatchStatus

log = logging.getLogger(__name__)

SEGREGATE_SQL = SQL_DIR / "segregate"
SCHEMA = "meter"
TABLES: dict[str, str] = {"A": "readings_a", "B": "readings_b", "C": "readings_c"}


class ReconciliationError(RuntimeError):
    """A batch's counts do not add up; nothing of it was promoted."""


@cache
def statement(name: str) -> str:
    """The text of ``include/sql/segregate/<name>``."""
    return (SEGREGATE_SQL / name).read_text(encoding="utf-8")


def source_statement(name: str, source: str, **parts: sql.Composable) -> sql.Composed:
    """``statement(name)`` with ``{table}`` set to the source's table (fixed mapping),
    ``{loading}`` to its private loading table, and any further ``parts`` (identifiers and
    literals composed by psycopg, for DDL that takes no parameters)."""
    return sql.SQL(statement(name)).format(
        table=sql.Identifier(SCHEMA, TABLES[source]),
        loading=sql.Identifier(SCHEMA, f"{TABLES[source]}_loading"),
        **parts,
    )


def table_name(source: str) -> str:
    return f"{SCHEMA}.{TABLES[source]}"


@dataclass
class SourceCounts:
    source: str
    staged: int
    first: datetime
    last: datetime
    promoted: int = 0
    superseded: int = 0
    kept: int = 0
    partitions_created: int = 0
    new_months: list[datetime] = field(default_factory=list)

    @property
    def received(self) -> int:
        """Rows written into the source's table (new + replaced)."""
        return self.promoted + self.superseded


@dataclass
class Promotion:
    """What promoting one batch did; logged, returned to Airflow as a dict."""

    batch_id: int
    status: str = BatchStatus.VALIDATED.value
    rows_validated: int = 0
    meters_registered: int = 0
    day_sums: int = 0  # meter-days whose day sums (mart.meter_day) were recomputed
    sources: dict[str, SourceCounts] = field(default_factory=dict)
    skipped_reason: str | None = None

    @property
    def promoted(self) -> int:
        return sum(c.promoted for c in self.sources.values())

    @property
    def superseded(self) -> int:
        return sum(c.superseded for c in self.sources.values())

    @property
    def kept(self) -> int:
        return sum(c.kept for c in self.sources.values())

    @property
    def reconciled(self) -> bool:
        return self.promoted + self.superseded + self.kept == self.rows_validated

    def received(self) -> list[str]:
        """Sources whose table received rows from this batch."""
        return [s for s, c in sorted(self.sources.items()) if c.received]

    def summary(self) -> str:
        if self.skipped_reason:
            return f"batch {self.batch_id}: skipped ({self.skipped_reason})"
        per_source = ", ".join(
            f"{s} {c.promoted:,}/{c.superseded:,}/{c.kept:,}"
            for s, c in sorted(self.sources.items())
        )
        return (
            f"batch {self.batch_id}: {self.rows_validated:,} rows validated → promoted "
            f"{self.promoted:,} new, superseded {self.superseded:,}, kept {self.kept:,} "
            f"(new/superseded/kept by source: {per_source or 'none'}); "
            f"{self.meters_registered:,} new meters; day sums of {self.day_sums:,} meter-days"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "rows_validated": self.rows_validated,
            "promoted": self.promoted,
            "superseded": self.superseded,
            "kept": self.kept,
            "meters_registered": self.meters_registered,
            "day_sums": self.day_sums,
            "received": self.received(),
            "skipped_reason": self.skipped_reason,
        }


def validated_batches(conn: psycopg.Connection) -> list[int]:
    """Every batch waiting for promotion (status 'validated'), oldest first."""
    return [b for (b,) in conn.execute(statement("validated_batches.sql"))]


def batch_stats(conn: psycopg.Connection, batch_id: int) -> dict[str, SourceCounts]:
    rows = conn.execute(statement("batch_stats.sql"), {"batch_id": batch_id}).fetchall()
    return {s: SourceCounts(s, n, first, last) for s, n, first, last in rows}


def promote_batch(conn: psycopg.Connection, batch_id: int) -> Promotion:
    """Promote one validated batch in one transaction; see the module docstring.

    ``conn`` must be in autocommit mode (the function opens its own transactions). A batch that
    is no longer 'validated' (promoted meanwhile by another run) is skipped, not an error.
    Raises :class:`ReconciliationError` when the counts do not add up (nothing promoted).
    """
    if not conn.autocommit:
        raise ValueError("promote_batch needs an autocommit connection (it runs transactions)")
    result = Promotion(batch_id)
    counts = batch_stats(conn, batch_id)
    try:
        with conn.transaction():
            row = conn.execute(statement("lock_batch.sql"), {"batch_id": batch_id}).fetchone()
            if row is None:
                raise LookupError(f"batch {batch_id} does not exist in audit.load_batch")
            status, rows_staged = row
            if status != BatchStatus.VALIDATED:
                result.status = status
                result.skipped_reason = f"status is {status!r}, not 'validated'"
                return result
            result.rows_validated = rows_staged
            conn.execute(statement("lock_segregation.sql"))
            cur = conn.execute(statement("register_meters.sql"), {"batch_id": batch_id})
            result.meters_registered = cur.rowcount
            for source in SOURCES:
                if source in counts:
                    _promote_source(conn, batch_id, counts[source])
            result.sources = counts
            problem = _reconcile(result, counts)
            if problem:
                raise ReconciliationError(
                    f"batch {batch_id}: {problem}; nothing promoted, batch stays 'validated'"
                    + _diagnose(conn, batch_id, rows_staged)
                )
            result.day_sums = _resum(conn, counts)
            params = {
                "batch_id": batch_id,
                "promoted": result.promoted,
                "superseded": result.superseded,
                "kept": result.kept,
            }
            marked = conn.execute(statement("mark_promoted.sql"), params).rowcount
            if marked != 1:  # cannot happen under the row lock; refuse rather than guess
                raise ReconciliationError(f"batch {batch_id}: could not be marked promoted")
            result.status = BatchStatus.PROMOTED.value
    except (ReconciliationError, aggregation.AggregationError) as exc:
        with conn.transaction():
            conn.execute(statement("record_error.sql"), {"batch_id": batch_id, "error": str(exc)})
        log.error("%s", exc)
        raise
    log.info("%s", result.summary())
    return result


def _resum(conn: psycopg.Connection, counts: dict[str, SourceCounts]) -> int:
    """Recompute the day sums of the local days the batch wrote (aggregate on write, V013), in
    the batch's transaction, so meter_peak_report reads sums rather than readings."""
    spans = {s: (c.first, c.last) for s, c in counts.items() if c.received}
    return aggregation.resum_spans(conn, spans) if spans else 0


def _promote_source(conn: psycopg.Connection, batch_id: int, c: SourceCounts) -> None:
    months = conn.execute(
        statement("partition_months.sql"),
        {"rel": TABLES[c.source], "first": c.first, "last": c.last},
    ).fetchall()
    c.new_months = [m for m, has_partition in months if not has_partition]
    params = {
        "batch_id": batch_id,
        "source": c.source,
        "first": c.first,
        "last": c.last,
        "new_months": c.new_months,
    }
    classified_superseded = 0
    if len(c.new_months) < len(months):  # some months have a partition: upsert into them
        classified_superseded, c.kept = conn.execute(
            source_statement("classify_source.sql", c.source), params
        ).fetchone()
        c.superseded = conn.execute(
            source_statement("supersede_source.sql", c.source), params
        ).rowcount
        if c.new_months or classified_superseded + c.kept != c.staged:
            c.promoted = conn.execute(
                source_statement("insert_source.sql", c.source), params
            ).rowcount
        # else every staged reading met a stored one: no new key, the INSERT would do nothing
    if c.new_months:
        c.promoted += _load_new_partitions(conn, batch_id, c)
    if c.superseded != classified_superseded:
        raise ReconciliationError(
            f"batch {batch_id}: {table_name(c.source)}: {c.superseded:,} readings replaced but "
            f"{classified_superseded:,} classified as replacing (a (meter, interval) staged "
            "twice in the batch, or the table changed underneath); nothing promoted"
        )


def _load_new_partitions(conn: psycopg.Connection, batch_id: int, c: SourceCounts) -> int:
    """Load the batch's readings of the months without a partition into new month tables,
    index them, attach them to the source table; return the rows loaded (all new)."""
    conn.execute(source_statement("load_partition_create.sql", c.source))
    months = []
    for start in c.new_months:
        end = (start + timedelta(days=32)).replace(day=1)
        months.append(
            {
                "part": sql.Identifier(SCHEMA, f"{TABLES[c.source]}_{start:%Y%m}"),
                "lo": sql.Literal(start.replace(tzinfo=UTC)),
                "hi": sql.Literal(end.replace(tzinfo=UTC)),
            }
        )
        conn.execute(source_statement("load_partition_month.sql", c.source, **months[-1]))
    params = {"batch_id": batch_id, "source": c.source, "months": c.new_months}
    loaded = conn.execute(source_statement("load_partition_insert.sql", c.source), params).rowcount
    for parts in months:
        try:
            conn.execute(source_statement("load_partition_index.sql", c.source, **parts))
        except psycopg.errors.UniqueViolation as exc:
            raise ReconciliationError(
                f"batch {batch_id}: {table_name(c.source)}: a (meter, interval) is staged twice "
                f"in the batch ({exc.diag.message_detail}); nothing promoted"
            ) from exc
    conn.execute(source_statement("load_partition_finish.sql", c.source))
    c.partitions_created = len(months)
    return loaded


def _reconcile(result: Promotion, counts: dict[str, SourceCounts]) -> str | None:
    """None when the batch's counts add up, else what is wrong."""
    total = result.promoted + result.superseded + result.kept
    staged = sum(c.staged for c in counts.values())
    if total != result.rows_validated:
        return (
            f"reconciliation mismatch: promoted {result.promoted:,} + superseded "
            f"{result.superseded:,} + kept {result.kept:,} = {total:,}, but "
            f"{result.rows_validated:,} rows validated (audit.load_batch.rows_staged; "
            f"{staged:,} rows in staging.reading)"
        )
    return None


def _diagnose(conn: psycopg.Connection, batch_id: int, rows_staged: int) -> str:
    """A hint for the error message: what in staging explains a mismatch."""
    n, keys = conn.execute(
        "SELECT count(*), count(DISTINCT (meter_id, interval_start)) FROM staging.reading "
        "WHERE batch_id = %s",
        (batch_id,),
    ).fetchone()
    hints = []
    if n != keys:
        hints.append(f"{n - keys:,} staged rows repeat a (meter, interval) of the same batch")
    if n != rows_staged:
        hints.append(
            f"staging.reading holds {n:,} rows of the batch, audit.load_batch says {rows_staged:,}"
        )
    return " (" + "; ".join(hints) + ")" if hints else ""


def promote_validated(conn: psycopg.Connection) -> tuple[list[Promotion], list[str]]:
    """Promote every validated batch, oldest first; (results, errors of batches that failed)."""
    results, errors = [], []
    for batch_id in validated_batches(conn):
        try:
            results.append(promote_batch(conn, batch_id))
        except ReconciliationError as exc:
            errors.append(str(exc))
    return results, errors


def purge_staging(conn: psycopg.Connection, retention_days: int | None = None) -> tuple[int, int]:
    """Delete staging rows of batches promoted more than ``retention_days`` ago (default: the
    ``staging_retention_days`` knob) or rejected more than ``rejected_retention_days`` ago, and
    rejected rows of files landed more than ``reject_retention_days`` ago; return (batches,
    staging rows) purged."""
    days = {
        "retention_days": (
            config.get("staging_retention_days") if retention_days is None else retention_days
        ),
        "rejected_retention_days": config.get("rejected_retention_days"),
        "reject_retention_days": config.get("reject_retention_days"),
    }
    for name, value in days.items():
        if value < 0:
            raise ValueError(f"{name} must be ≥ 0, got {value}")
    with conn.transaction():
        batches, rows, rejected_rows = conn.execute(statement("purge_staging.sql"), days).fetchone()
    log.info(
        "purged %s staging rows of %s batches (promoted over %s days or rejected over %s days "
        "ago) and %s rejected rows of files landed over %s days ago",
        f"{rows:,}",
        batches,
        days["retention_days"],
        days["rejected_retention_days"],
        f"{rejected_rows:,}",
        days["reject_retention_days"],
    )
    return batches, rows


def received_by_source(results: Iterable[dict[str, Any] | None]) -> dict[str, list[int]]:
    """source → ids of the batches whose rows went into its table (for the READINGS events)."""
    out: dict[str, list[int]] = {s: [] for s in SOURCES}
    for r in results:
        for s in (r or {}).get("received", []):
            out[s].append(r["batch_id"])
    return {s: sorted(ids) for s, ids in out.items()}


def connect() -> psycopg.Connection:
    """An autocommit connection to the warehouse (promote_batch runs its own transactions)."""
    return warehouse.connect(autocommit=True)
