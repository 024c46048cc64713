"""Readers: a landed file → chunks of raw rows in one common frame shape.

Every reader yields pandas frames with the columns RAW_COLUMNS:

- ``row_no``: the row a person finds in the file (1-based, header included; the line of the
  300 record for NEM12, the line for packets);
- ``location``: the sheet of a workbook (None for text files);
- ``channel``: the channel as the file names it (NEM12 NMI suffix, a channel column, a wide
  column's ``<meter> <channel>`` header), or None where the file names none (the feed's default);
- ``meter_id``, ``timestamp``, ``reading``, ``quality``: the values as found (text, numbers or
  datetimes; categorical where values repeat), uninterpreted — cleansing judges them;
- optionally ``problem``: why a row is no record at all (a line that is not JSON), or None.

A file that cannot be read at all (corrupt workbook, unknown format, required columns missing)
raises UnreadableFile with a message naming the file and the problem; nothing of it loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from meterflow.feeds import Feed

RAW_COLUMNS = ["row_no", "location", "meter_id", "channel", "timestamp", "reading", "quality"]


class UnreadableFile(Exception):
    """The file cannot be read at all; the message names the file and the problem."""


def read(path: Path, feed: Feed, *, chunk_rows: int = 250_000) -> Iterator[pd.DataFrame]:
    """Raw frames of ``path`` as ``feed`` describes it, at most about ``chunk_rows`` rows each."""
    path = Path(path)
    suffix = path.suffix.lower()
    if feed.layout == "nem12":
        from meterflow.readers import nem12

        yield from nem12.read(path, feed, chunk_rows=chunk_rows)
    elif feed.layout == "packets":
        from meterflow.readers import packets

        yield from packets.read(path, feed, chunk_rows=chunk_rows)
    elif suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
        from meterflow.readers import tabular

        yield from tabular.read_workbook(path, feed, chunk_rows=chunk_rows)
    elif suffix in (".csv", ".txt", ".tsv"):
        from meterflow.readers import tabular

        yield from tabular.read_csv(path, feed, chunk_rows=chunk_rows)
    else:
        raise UnreadableFile(
            f"{path.name}: unknown format {suffix or '(no extension)'!r} for feed {feed.name!r} "
            "(expected .csv, .xlsx or .xlsm)"
        )
