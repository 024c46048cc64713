"""Timestamp texts → instants, classified by regular expressions over all distinct texts at
once (pyarrow), for meterflow.cleansing (which holds the rules: docs/timestamps-and-channels.md).

Year first (ISO 8601 with ``T`` or a space, seconds, fraction, offset or ``Z``; also
2025/02/01) is always year-month-day; a day-month form with ``/``, ``.`` or ``-`` and the year
last is read in the feed's ``dayfirst`` order, and classed by whether the other order could
read it too; a text with a month name goes to dateutil; anything else is unparseable.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DAY_NS = 86_400 * 1_000_000_000
# status codes of distinct values
OK, MISSING, BAD, NONEXISTENT, AMBIGUOUS, NEGATIVE, HIGH, UNKNOWN, OTHER_ORDER = range(9)
# day-month class of a distinct timestamp: none, reads both ways, only the feed's, only the other
DM_NONE, DM_BOTH, DM_FEED, DM_OTHER = range(4)

_TIME = (
    r"(?:(?:T|\s+)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"\s*(?P<p>[AP]M)?)?\s*(?P<z>Z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
ISO_RE = r"(?i)^\s*(?P<y>\d{4})(?P<s1>[-/.])(?P<m>\d{1,2})(?P<s2>[-/.])(?P<d>\d{1,2})" + _TIME
DAY_MONTH_RE = (
    r"(?i)^\s*(?P<a>\d{1,2})(?P<s1>[-/.])(?P<b>\d{1,2})(?P<s2>[-/.])(?P<y>\d{4}|\d{2})" + _TIME
)
_MONTH_NAME = re.compile(r"[A-Za-z]{3}")


def _ints(field: Any, default: int) -> np.ndarray:
    """An extracted group (pyarrow strings) as int64; an empty (absent) group is ``default``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    filled = pc.if_else(pc.equal(field, ""), str(default), field)
    return np.asarray(pc.cast(filled, pa.int64()).to_numpy(zero_copy_only=False), dtype="int64")


def _wall_ns(y, mo, d, hour, minute, sec, frac) -> tuple[np.ndarray, np.ndarray]:
    """(valid, nanoseconds since 1970-01-01 of the wall-clock time) from date/time parts."""
    import numpy as np

    ok = (mo >= 1) & (mo <= 12) & (d >= 1) & (y >= 1900) & (y <= 2200)
    ok &= (hour <= 23) & (minute <= 59) & (sec <= 59)
    month = np.where(ok, (y - 1970) * 12 + mo - 1, 0).astype("datetime64[M]")
    first = month.astype("datetime64[D]")
    month_days = ((month + 1).astype("datetime64[D]") - first).astype("int64")
    ok &= d <= month_days
    days = first.astype("int64") + d - 1
    ns = days * DAY_NS + hour * 3_600_000_000_000 + minute * 60_000_000_000 + sec * 10**9 + frac
    return ok, np.where(ok, ns, 0)


def _time_parts(m: Any) -> tuple[np.ndarray, ...]:
    """(valid, hour, minute, second, fraction ns, offset minutes, has offset) of the matches."""
    import numpy as np
    import pyarrow.compute as pc

    hour, minute, sec = _ints(m.field("H"), 0), _ints(m.field("M"), 0), _ints(m.field("S"), 0)
    frac = _ints(pc.utf8_rpad(m.field("f"), 9, "0"), 0)
    ampm = np.asarray(pc.utf8_upper(m.field("p")).to_numpy(zero_copy_only=False), dtype=object)
    has_p = ampm != ""
    ok = ~has_p | ((hour >= 1) & (hour <= 12))
    hour = np.where(has_p & (ampm == "AM") & (hour == 12), 0, hour)
    hour = np.where(has_p & (ampm == "PM") & (hour < 12), hour + 12, hour)
    zone = pc.utf8_upper(pc.replace_substring(m.field("z"), ":", ""))
    has_z = np.asarray(pc.not_equal(zone, "").to_numpy(zero_copy_only=False), dtype=bool)
    numeric = pc.if_else(pc.match_substring_regex(zone, r"^[+-]"), zone, "+0000")
    sign = np.where(
        np.asarray(pc.utf8_slice_codeunits(numeric, 0, 1).to_numpy(zero_copy_only=False)) == "-",
        -1,
        1,
    )
    hours = _ints(pc.utf8_slice_codeunits(numeric, 1, 3), 0)
    offset = sign * (hours * 60 + _ints(pc.utf8_slice_codeunits(numeric, 3, 5), 0))
    return ok, hour, minute, sec, frac, offset, has_z


@dataclass
class _Stamps:
    """Per distinct text: status, nanoseconds (UTC if aware, else wall clock), aware?, dm class."""

    status: np.ndarray
    ns: np.ndarray
    aware: np.ndarray
    dm: np.ndarray


def parse_texts(texts: list[str], dayfirst: bool) -> _Stamps:
    """Classify and parse timestamp texts (see the module doc); vectorised with pyarrow."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(texts)
    out = _Stamps(
        np.full(n, BAD, dtype="int8"),
        np.zeros(n, dtype="int64"),
        np.zeros(n, dtype=bool),
        np.full(n, DM_NONE, dtype="int8"),
    )
    if not n:
        return out
    arr = pa.array(texts, type=pa.string())
    matched = np.zeros(n, dtype=bool)
    iso = pc.extract_regex(arr, ISO_RE)
    hit = np.asarray(iso.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    same_sep = np.asarray(
        pc.equal(iso.field("s1"), iso.field("s2")).to_numpy(zero_copy_only=False), dtype=bool
    )
    if hit.any():
        t_ok, hour, minute, sec, frac, offset, has_z = _time_parts(iso)
        ok, ns = _wall_ns(
            _ints(iso.field("y"), 0),
            _ints(iso.field("m"), 0),
            _ints(iso.field("d"), 0),
            hour,
            minute,
            sec,
            frac,
        )
        ok &= t_ok & same_sep & hit
        out.status[ok] = OK
        out.ns[ok] = ns[ok] - offset[ok] * 60_000_000_000 * has_z[ok]
        out.aware[ok] = has_z[ok]
        matched |= hit
    dm = pc.extract_regex(arr, DAY_MONTH_RE)
    hit = np.asarray(dm.is_valid().to_numpy(zero_copy_only=False), dtype=bool) & ~matched
    if hit.any():
        same_sep = np.asarray(
            pc.equal(dm.field("s1"), dm.field("s2")).to_numpy(zero_copy_only=False), dtype=bool
        )
        t_ok, hour, minute, sec, frac, offset, has_z = _time_parts(dm)
        a, b, y = _ints(dm.field("a"), 0), _ints(dm.field("b"), 0), _ints(dm.field("y"), 0)
        y = np.where(y < 100, y + 2000, y)  # 15/01/25 is 2025
        day, month = (a, b) if dayfirst else (b, a)
        feed_ok, feed_ns = _wall_ns(y, month, day, hour, minute, sec, frac)
        other_ok, _ = _wall_ns(y, day, month, hour, minute, sec, frac)
        good = hit & t_ok & same_sep
        feed_ok &= good
        other_ok &= good
        out.status[feed_ok] = OK
        out.ns[feed_ok] = (feed_ns - offset * 60_000_000_000 * has_z)[feed_ok]
        out.aware[feed_ok] = has_z[feed_ok]
        out.dm[feed_ok & other_ok & (a != b)] = DM_BOTH
        out.dm[feed_ok & ~other_ok] = DM_FEED
        out.dm[~feed_ok & other_ok] = DM_OTHER
        out.status[~feed_ok & other_ok] = OTHER_ORDER
        matched |= hit
    for i in np.flatnonzero(~matched):  # month names (1 Feb 2025 00:30): few, dateutil
        if not _MONTH_NAME.search(texts[i]):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pandas as pd

                stamp = pd.Timestamp(pd.to_datetime(texts[i], dayfirst=dayfirst))
        except (ValueError, TypeError, OverflowError):
            continue
        if stamp is pd.NaT:
            continue
        out.status[i] = OK
        out.aware[i] = stamp.tzinfo is not None
        stamp = stamp.tz_convert("UTC").tz_localize(None) if out.aware[i] else stamp
        out.ns[i] = stamp.as_unit("ns").value
    return out
