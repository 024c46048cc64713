"""The command line: ``python -m meterflow ingest PATH [--feed NAME] [--dry-run]``.

``ingest`` loads one file exactly as the meter_ingest DAG does (``ingest.load_file``: one
batch, exactly once, raw copy on S3, the file moved to processed/ or failed/) and prints the
batch's accounting: rows read, staged, rejected by reason, duplicates. It exits 1 when the file
cannot be read at all (the file is then in failed/<feed>/ with its .error.txt), 2 on a usage
error. ``--dry-run`` reads and cleanses the file and counts what would be staged, rejected and
dropped as duplicates, without writing anything: no batch, no rows, no S3, the file stays put.
The feed is the one whose landing folder and patterns take the file, or ``--feed``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from meterflow.models import LoadResult, Reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meterflow", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ingest_cmd = commands.add_parser("ingest", help="load one landed file into staging")
    ingest_cmd.add_argument("path", type=Path, help="the file (in a feed folder, or give --feed)")
    ingest_cmd.add_argument("--feed", help="feed name from include/config/feeds.yaml")
    ingest_cmd.add_argument(
        "--dry-run", action="store_true", help="read and cleanse only; write nothing"
    )
    ingest_cmd.add_argument("-v", "--verbose", action="store_true", help="log every step")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return _ingest(args.path, args.feed, dry_run=args.dry_run)


def _ingest(path: Path, feed_name: str | None, *, dry_run: bool) -> int:
    from meterflow import config, feeds, ingest, readers

    landing = Path(config.get("landing_dir"))
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 2
    known = feeds.load_feeds()
    if feed_name is not None:
        if feed_name not in known:
            print(f"unknown feed {feed_name!r}; feeds: {', '.join(known)}", file=sys.stderr)
            return 2
        feed = known[feed_name]
    else:
        feed = feeds.feed_for_path(path, landing, known)
        if feed is None:
            print(
                f"{path}: no feed takes this file (it is not in a feed folder of {landing} with "
                "a matching name); give --feed",
                file=sys.stderr,
            )
            return 2
    try:
        if dry_run:
            result = dry_run_file(path, feed)
        else:
            result = ingest.load_file(path, feed, landing_dir=landing)
    except readers.UnreadableFile as exc:
        where = "" if dry_run else f" (moved to {landing / 'failed' / feed.name})"
        print(f"failed: {exc}{where}", file=sys.stderr)
        return 1
    _report(result, dry_run)
    return 0


def dry_run_file(path: Path, feed) -> LoadResult:
    """What loading ``path`` would do, computed without writing anything."""
    from collections import Counter

    from meterflow import cleansing, config, readers
    from meterflow.ingest import _DuplicateTracker

    cleanser = cleansing.Cleanser(
        feed, now=datetime.now(UTC), max_kwh=config.get("max_kwh"), meter_limits=_limits()
    )
    tracker = _DuplicateTracker()
    result = LoadResult(file=path.name, feed=feed.name, status="dry run")
    reasons: Counter[str] = Counter()

    def take(clean, rejects) -> None:
        tracker.add(clean)
        reasons.update({k: v for k, v in rejects["reason"].value_counts().items() if v})

    for raw in readers.read(path, feed, chunk_rows=100_000):
        result.rows_read += len(raw)
        take(*cleanser.cleanse(raw))
    take(*cleanser.finish())  # the rows held to the end of the file (the repeated hour)
    exact, conflicts = tracker.resolve()
    if conflicts:
        reasons[Reason.CONFLICTING_DUPLICATE.value] += sum(n for *_, n in conflicts)
    result.rows_duplicate = sum(n - 1 for *_, n in exact)
    result.rows_rejected = sum(reasons.values())
    result.rows_staged = result.rows_read - result.rows_rejected - result.rows_duplicate
    result.reasons = dict(reasons)
    return result


def _limits() -> dict[str, float]:
    """Meters' own limits from meter.meter, read only; none when the warehouse is away."""
    import psycopg

    from meterflow import warehouse
    from meterflow.ingest import meter_limits

    try:
        with warehouse.connect() as conn, conn.cursor() as cur:
            return meter_limits(cur)
    except psycopg.Error as exc:
        logging.getLogger(__name__).warning("no meter limits from the warehouse: %s", exc)
        return {}


def _report(result: LoadResult, dry_run: bool) -> None:
    if result.skipped_reason:
        print(result.summary())
        return
    print(("dry run, nothing written: " if dry_run else "") + result.summary())
    for reason, n in sorted(result.reasons.items(), key=lambda item: -item[1]):
        print(f"  rejected {reason}: {n:,}")
    print(f"  balanced: read = staged + rejected + duplicates: {result.balanced}")
