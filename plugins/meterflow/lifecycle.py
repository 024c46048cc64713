"""Meter lifecycle: exclusion lists and approval files in, tranches out (docs/registry.md).

A meter's status (loaded → eligible / excluded → selected → notified) and its history live in
the warehouse (V020); the site rule — one excluded meter excludes its whole site, lifting the
last exclusion restores it — is enforced there by triggers, so this module only moves files.

List files (exclusion lists, approval files) land in a feed's folder and are picked up by
``meter_ingest`` like any file; :func:`meterflow.ingest.load_file` hands them here. Format
(comma- or pipe-separated, the delimiter taken from the header line)::

    HDR|<sending system>|<sequence>|<created YYYYMMDDHHMMSS>[|<tranche sequence>]
    <meter id>|<exclusion code>|ADD|REMOVE|ALL            (an exclusion list)
    <meter id>|APPROVED|REJECTED|<reason>                  (an approval file)
    TRL|<number of data rows>

Every file is one transaction. It is held — moved to ``failed/<feed>/`` with an
``.error.txt``, one ``audit.list_error`` row per problem, nothing loaded — when the footer's
count disagrees, its sequence number is not the next one of that system and feed (a gap or a
repeat), or any row is wrong. The activity log is ``audit.list_load``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meterflow import SQL_DIR, config, warehouse
from meterflow.models import LoadResult

if TYPE_CHECKING:
    import psycopg

    from meterflow.feeds import Feed

log = logging.getLogger(__name__)

SQL = SQL_DIR / "registry"
EXCLUSION_PREFIX = "exclusions_"  # a feed named exclusions_<list> carries one exclusion list
APPROVAL_FEED = "approvals"  # approval files answering outbound tranche files
HEADER, FOOTER = "HDR", "TRL"
METHODS = ("ADD", "REMOVE", "ALL")
OUTCOMES = {"APPROVED": "approved", "REJECTED": "rejected"}
OUTBOUND_PREFIX = "outbound"
STATUS = "listed"  # LoadResult.status of a loaded list file (no batch, nothing staged)
_CLEANUP = """
    UPDATE audit.list_load
       SET status = 'cleaned', finished_at = clock_timestamp(),
           message = coalesce(message || '; ', '') || 'did not finish; cleaned up by load '
                     || %(load_id)s
     WHERE feed = %(feed)s AND load_id < %(load_id)s AND status IN ('running', 'failed')
    RETURNING load_id"""
_LAST_SEQUENCE = """
    SELECT max(sequence) FROM audit.list_load
     WHERE feed = %s AND system = %s AND status = 'loaded'"""


class ListFileWaiting(Exception):
    """An earlier file of the same system (a lower sequence number) is still in the landing
    folder: this one waits for it (the task's retry loads it later), so files that land
    together and load in parallel are taken in sequence order, not held as a gap."""


@dataclass
class ListFile:
    name: str
    sha256: str
    system: str | None = None
    sequence: int | None = None
    reference: str | None = None  # the 5th header field: the tranche sequence of an approval
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    problems: list[tuple[int | None, str]] = field(default_factory=list)


def handles(feed: Feed) -> bool:
    """Does this feed carry list files (exclusions or approvals) rather than readings?"""
    return feed.name.startswith(EXCLUSION_PREFIX) or feed.name == APPROVAL_FEED


def parse(path: Path) -> ListFile:
    """The header, data rows and footer of a list file, with every structural problem."""
    data = path.read_bytes()
    out = ListFile(name=path.name, sha256=hashlib.sha256(data).hexdigest())
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        out.problems.append((None, f"not UTF-8 text: {exc}"))
        return out
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        out.problems.append((None, "empty file: no header record"))
        return out
    delimiter = "|" if "|" in lines[0][1] else ","
    records = [
        (n, [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]) for n, line in lines
    ]
    first_no, head = records[0]
    if head[0].upper() != HEADER or len(head) < 3:
        out.problems.append((first_no, f"expected a header {HEADER}|system|sequence|created"))
        return out
    out.system = head[1] or None
    if not out.system:
        out.problems.append((first_no, "header names no sending system"))
    try:
        out.sequence = int(head[2])
        if out.sequence < 1:
            raise ValueError
    except ValueError:
        out.problems.append((first_no, f"header sequence {head[2]!r} is not a positive number"))
    out.reference = head[4] if len(head) > 4 and head[4] else None
    last_no, tail = records[-1]
    if tail[0].upper() != FOOTER or len(records) < 2:
        out.problems.append((last_no, f"no footer record {FOOTER}|<row count> at the end"))
        out.rows = records[1:]
        return out
    out.rows = records[1:-1]
    count = tail[1] if len(tail) > 1 else ""
    if not count.isdigit() or int(count) != len(out.rows):
        out.problems.append(
            (last_no, f"footer says {count or 'nothing'} rows, the file has {len(out.rows)}")
        )
    return out


def _header(path: Path) -> tuple[str, int] | None:
    """(system, sequence) from a list file's header line; None when it has none."""
    try:
        with path.open(encoding="utf-8-sig") as fh:
            line = fh.readline()
    except (OSError, UnicodeDecodeError):
        return None
    cells = [c.strip() for c in line.replace("|", ",").split(",")]
    if len(cells) < 3 or cells[0].upper() != HEADER or not cells[2].isdigit():
        return None
    return cells[1], int(cells[2])


def _earlier_in_landing(path: Path, feed: Feed, listed: ListFile) -> Path | None:
    """A file of the same feed and system with a lower sequence still waiting in landing."""
    if listed.sequence is None:
        return None
    for other in sorted(path.parent.iterdir()):
        if other == path or not other.is_file() or not feed.takes(other):
            continue
        head = _header(other)
        if head and head[0] == listed.system and head[1] < listed.sequence:
            return other
    return None


def _exclusion_rows(listed: ListFile, feed: Feed, codes: set[str]) -> dict[str, tuple[str, str]]:
    """meter id → (code, method), the last row of a meter winning; problems appended."""
    pattern = re.compile(feed.meter_id_pattern)
    out: dict[str, tuple[str, str]] = {}
    methods = set()
    for n, cells in listed.rows:
        if len(cells) != 3:
            listed.problems.append((n, f"expected meter|code|method, got {len(cells)} fields"))
            continue
        meter_id, code, method = cells[0].upper(), cells[1].upper(), cells[2].upper()
        if not pattern.match(meter_id):
            listed.problems.append((n, f"meter id {meter_id!r} does not match the feed's pattern"))
        elif code not in codes:
            listed.problems.append((n, f"unknown exclusion code {code!r} (ref.exclusion_code)"))
        elif method not in METHODS:
            listed.problems.append((n, f"method {method!r} is not ADD, REMOVE or ALL"))
        else:
            methods.add(method)
            out[meter_id] = (code, method)
    if "ALL" in methods and len(methods) > 1:
        listed.problems.append((None, "ALL rows mixed with ADD/REMOVE rows"))
    return out


def _sequence_problem(cur: psycopg.Cursor, feed: str, listed: ListFile) -> str | None:
    last = cur.execute(_LAST_SEQUENCE, (feed, listed.system)).fetchone()[0]
    if last is None or listed.sequence is None:
        return None
    if listed.sequence <= last:
        return f"sequence {listed.sequence} of {listed.system} repeats (last loaded: {last})"
    if listed.sequence != last + 1:
        return f"sequence gap: {listed.system} sent {listed.sequence}, expected {last + 1}"
    return None


def _hold(cur: psycopg.Cursor, load_id: int, listed: ListFile) -> str:
    cur.executemany(
        "INSERT INTO audit.list_error (load_id, line_no, problem) VALUES (%s, %s, %s)",
        [(load_id, n, p) for n, p in listed.problems],
    )
    shown = [f"line {n}: {p}" if n else p for n, p in listed.problems[:5]]
    more = f" (and {len(listed.problems) - 5} more)" if len(listed.problems) > 5 else ""
    message = f"{listed.name}: held, nothing loaded: " + "; ".join(shown) + more
    cur.execute(
        "UPDATE audit.list_load SET status = 'held', message = %s, "
        "finished_at = clock_timestamp() WHERE load_id = %s",
        (message, load_id),
    )
    return message


def _apply_exclusions(cur, feed: Feed, load_id: int, rows: dict[str, tuple[str, str]]) -> dict:
    replace = any(m == "ALL" for _, m in rows.values())
    params = {
        "list": feed.name.removeprefix(EXCLUSION_PREFIX),
        "load_id": load_id,
        "meter_id": list(rows),
        "code": [c for c, _ in rows.values()],
        "method": [m for _, m in rows.values()],
    }
    sql = (SQL / ("list_replace.sql" if replace else "list_apply.sql")).read_text()
    added, changed, removed = cur.execute(sql, params).fetchone()
    return {
        "method": "ALL" if replace else "ADD/REMOVE",
        "rows_added": added,
        "rows_changed": changed,
        "rows_removed": removed,
        "rows_unchanged": len(rows) - added - changed - removed,
    }


def _apply_approval(cur, listed: ListFile) -> dict:
    tranche = cur.execute(
        "SELECT tranche_id FROM meter.tranche WHERE system = %s AND sequence::text = %s",
        (listed.system, listed.reference),
    ).fetchone()
    if tranche is None:
        listed.problems.append(
            (1, f"no tranche {listed.reference!r} sent to {listed.system} (header field 5)")
        )
        return {}
    selected = {
        m
        for (m,) in cur.execute(
            "SELECT meter_id FROM meter.tranche_meter WHERE tranche_id = %s AND outcome IS NULL",
            tranche,
        )
    }
    ids, outcomes, reasons = [], [], []
    for n, cells in listed.rows:
        meter_id = cells[0].upper()
        outcome = OUTCOMES.get(cells[1].upper()) if len(cells) > 1 else None
        if meter_id not in selected:
            listed.problems.append((n, f"{meter_id} is not awaiting approval in this tranche"))
        elif outcome is None:
            listed.problems.append((n, "expected meter|APPROVED or REJECTED|reason"))
        else:
            reason = cells[2] if len(cells) > 2 and cells[2] else None
            if outcome == "rejected":
                reason = f"returned by {listed.system}: {reason or 'no reason given'}"
            ids.append(meter_id)
            outcomes.append(outcome)
            reasons.append(reason or f"approved by {listed.system}")
    if listed.problems:
        return {}
    moved = cur.execute(
        (SQL / "approval_apply.sql").read_text(),
        {"tranche_id": tranche[0], "meter_id": ids, "outcome": outcomes, "reason": reasons},
    ).fetchall()
    returned = sorted({site for outcome, site in moved if outcome == "rejected"})
    if returned:
        cur.execute("SELECT meter.apply_site_rule(%s)", (returned,))
    approved = sum(1 for outcome, _ in moved if outcome == "approved")
    return {
        "method": "APPROVAL",
        "rows_changed": len(moved),
        "rows_added": approved,
        "rows_removed": len(moved) - approved,
        "rows_unchanged": len(listed.rows) - len(moved),
    }


def load_file(
    path: Path,
    feed: Feed,
    *,
    conn_id: str | None = None,
    landing_dir: Path | None = None,
    move: bool = True,
) -> LoadResult:
    """Load one list file in one transaction, or hold it with its problems recorded.

    Raises :class:`meterflow.readers.UnreadableFile` when the file is held, after recording
    why and moving it to ``failed/<feed>/`` with an ``.error.txt``; :class:`ListFileWaiting`
    (the file left in landing, for the task's retry) while an earlier sequence of the same
    system is still waiting beside it."""
    from meterflow import ingest, readers

    path = Path(path)
    landing = Path(landing_dir or config.get("landing_dir"))
    listed = parse(path)
    result = LoadResult(file=path.name, feed=feed.name)
    earlier = _earlier_in_landing(path, feed, listed)
    if earlier is not None:
        raise ListFileWaiting(
            f"{path.name}: sequence {listed.sequence} of {listed.system} waits for "
            f"{earlier.name} (an earlier sequence) still in landing; retried later"
        )
    with warehouse.connect(conn_id, autocommit=True) as log_conn:
        load_id = log_conn.execute(
            """INSERT INTO audit.list_load (feed, file_name, sha256, system, sequence,
                                            rows_in_file)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING load_id""",
            (feed.name, path.name, listed.sha256, listed.system, listed.sequence, len(listed.rows)),
        ).fetchone()[0]
    with warehouse.connect(conn_id) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('meterflow list ' || %s))", (feed.name,))
        cleaned = cur.execute(_CLEANUP, {"feed": feed.name, "load_id": load_id}).fetchall()
        if cleaned:
            log.warning("%s: earlier loads %s did not finish: marked cleaned", feed.name, cleaned)
        cur.execute("SELECT set_config('meterflow.actor', %s, true)", (f"file:{path.name}",))
        counts: dict[str, Any] = {}
        if not listed.problems and (problem := _sequence_problem(cur, feed.name, listed)):
            listed.problems.append((1, problem))
        if not listed.problems:
            if feed.name == APPROVAL_FEED:
                counts = _apply_approval(cur, listed)
            else:
                codes = {c for (c,) in cur.execute("SELECT code FROM ref.exclusion_code")}
                rows = _exclusion_rows(listed, feed, codes)
                if not listed.problems:
                    counts = _apply_exclusions(cur, feed, load_id, rows)
        if listed.problems:
            conn.rollback()  # nothing of the file; then record why it is held
            cur.execute(_CLEANUP, {"feed": feed.name, "load_id": load_id})
            message = _hold(cur, load_id, listed)
            conn.commit()
            if move:
                target = ingest._move(path, landing, ingest.FAILED, feed.name)
                target.with_name(target.name + ".error.txt").write_text(message + "\n")
            log.error("%s", message)
            raise readers.UnreadableFile(message)
        cur.execute(
            """UPDATE audit.list_load
                  SET status = 'loaded', method = %(method)s, rows_added = %(rows_added)s,
                      rows_changed = %(rows_changed)s, rows_removed = %(rows_removed)s,
                      rows_unchanged = %(rows_unchanged)s, finished_at = clock_timestamp()
                WHERE load_id = %(load_id)s""",
            {**counts, "load_id": load_id},
        )
        conn.commit()
    result.status = STATUS
    result.rows_read = result.rows_staged = len(listed.rows)
    log.info(
        "%s: %s %s of %s, sequence %s: %s added, %s changed, %s removed, %s unchanged",
        path.name,
        counts["method"],
        f"{len(listed.rows):,} rows",
        listed.system,
        listed.sequence,
        *(f"{counts[k]:,}" for k in ("rows_added", "rows_changed", "rows_removed")),
        f"{counts['rows_unchanged']:,}",
    )
    if move:
        ingest._move(path, landing, ingest.PROCESSED, feed.name)
    return result


# --- tranches ---------------------------------------------------------------------------------


def select_tranche(
    size: int,
    tranche_date: date,
    *,
    system: str | None = None,
    run_id: str | None = None,
    conn_id: str | None = None,
) -> dict[str, Any]:
    """Judge meters still loaded, then select the next tranche of whole eligible sites (oldest
    eligible first, at most ``size`` meters) in one transaction; return its id, sequence and
    counts (``judged``: meters judged first — none since V024 judges meters as they
    register, unless some were set back to loaded)."""
    system = system or config.get("tranche_system")
    with warehouse.connect(conn_id) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('meterflow tranche'))")
        # one big set-based statement: JIT compiling it costs more than it saves, and sorts
        # and hashes of 100,000s of rows should stay in memory
        cur.execute("SET LOCAL jit = off")
        cur.execute("SET LOCAL work_mem = '128MB'")
        judged = cur.execute("SELECT meter.judge_loaded()").fetchone()[0]
        sequence = cur.execute(
            "SELECT coalesce(max(sequence), 0) + 1 FROM meter.tranche WHERE system = %s",
            (system,),
        ).fetchone()[0]
        tranche_id = cur.execute(
            """INSERT INTO meter.tranche (system, sequence, tranche_date, size_asked, meters,
                                          sites, run_id)
               VALUES (%s, %s, %s, %s, 0, 0, %s) RETURNING tranche_id""",
            (system, sequence, tranche_date, size, run_id),
        ).fetchone()[0]
        cur.execute("SELECT set_config('meterflow.actor', %s, true)", (f"tranche:{tranche_id}",))
        meters, sites = cur.execute(
            (SQL / "tranche_select.sql").read_text(),
            {"tranche_id": tranche_id, "size": size, "reason": f"tranche {system} {sequence}"},
        ).fetchone()
        if meters == 0:  # nothing eligible fits: no tranche, the sequence number stays free
            conn.rollback()
            if judged:
                cur.execute("SELECT meter.judge_loaded()")
                conn.commit()
            log.warning("tranche %s: no eligible site fits in %s meters", system, f"{size:,}")
            return {
                "tranche_id": None,
                "system": system,
                "sequence": None,
                "meters": 0,
                "sites": 0,
                "judged": judged,
            }
        cur.execute(
            "UPDATE meter.tranche SET meters = %s, sites = %s WHERE tranche_id = %s",
            (meters, sites, tranche_id),
        )
        conn.commit()
    log.info(
        "tranche %s %s (%s): %s meters at %s sites selected of %s asked; %s new meters judged",
        system,
        sequence,
        tranche_date,
        f"{meters:,}",
        f"{sites:,}",
        f"{size:,}",
        f"{judged:,}",
    )
    return {
        "tranche_id": tranche_id,
        "system": system,
        "sequence": sequence,
        "meters": meters,
        "sites": sites,
        "judged": judged,
    }


def outbound_text(tranche_id: int, conn_id: str | None = None) -> tuple[str, str]:
    """(file name, content) of a tranche's outbound file: header, one row per meter, footer."""
    with warehouse.connect(conn_id) as conn:
        system, sequence, day, created = conn.execute(
            "SELECT system, sequence, tranche_date, created_at FROM meter.tranche "
            "WHERE tranche_id = %s",
            (tranche_id,),
        ).fetchone()
        rows = conn.execute(
            """SELECT t.meter_id, coalesce(m.site, ''), coalesce(m.region, '')
                 FROM meter.tranche_meter t JOIN meter.meter m USING (meter_id)
                WHERE t.tranche_id = %s ORDER BY t.site_key, t.meter_id""",
            (tranche_id,),
        ).fetchall()
    stamp = created.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    out = io.StringIO()
    writer = csv.writer(out, delimiter="|", lineterminator="\n")
    writer.writerow([HEADER, system, sequence, stamp, day.isoformat()])
    writer.writerows(rows)
    writer.writerow([FOOTER, len(rows)])
    return f"TRANCHE_{system}_{sequence:06d}_{stamp}.txt", out.getvalue()


def write_outbound(tranche_id: int, conn_id: str | None = None) -> str:
    """Put the tranche's outbound file on S3 at outbound/<system>/<name>; return the key.
    Idempotent: a retry writes the same object again."""
    from meterflow import ingest

    name, text = outbound_text(tranche_id, conn_id)
    with warehouse.connect(conn_id) as conn:
        (system,) = conn.execute(
            "SELECT system FROM meter.tranche WHERE tranche_id = %s", (tranche_id,)
        ).fetchone()
        key = f"{config.s3_prefix(OUTBOUND_PREFIX)}/{system}/{name}"
        ingest._s3_client(config.get("aws_conn_id")).put_object(
            Bucket=config.get("s3_bucket"), Key=key, Body=text.encode("utf-8")
        )
        conn.execute(
            "UPDATE meter.tranche SET file_key = %s WHERE tranche_id = %s", (key, tranche_id)
        )
        conn.commit()
    log.info(
        "tranche %s: outbound file s3://%s/%s (%s rows)",
        tranche_id,
        config.get("s3_bucket"),
        key,
        f"{text.count(chr(10)) - 2:,}",
    )
    return key


def status_counts(conn_id: str | None = None, *, conn: Any = None) -> dict[str, Any]:
    """The registry by status and by exclusion code, for the daily email and the dashboard::

        {"meters": 1000000,
         "statuses": [{"code": "loaded", "name": "Loaded", "meters": 0}, ...],   # every status
         "exclusions": [{"code": "NONCOMM", "name": "Non-communicating", "meters": 20000,
                         "own": 10000, "via_site": 10000}, ...]}                 # every code

    Statuses in lifecycle order; exclusion codes by meters, most first. ``own``: meters on a
    list themselves; ``via_site``: the other meters of their sites. ``conn``: run on the
    caller's connection (one query)."""
    sql = (SQL / "status_counts.sql").read_text()
    if conn is None:
        with warehouse.connect(conn_id) as own_conn:
            rows = own_conn.execute(sql).fetchall()
    else:
        rows = conn.execute(sql).fetchall()
    statuses = [
        {"code": code, "name": name, "meters": n}
        for kind, code, name, n, *_ in rows
        if kind == "status"
    ]
    exclusions = [
        {"code": code, "name": name, "meters": n, "own": own, "via_site": via}
        for kind, code, name, n, own, via, _ in rows
        if kind == "exclusion"
    ]
    return {
        "meters": sum(s["meters"] for s in statuses),
        "statuses": statuses,
        "exclusions": exclusions,
    }
