"""Cleansing: raw rows of a reader → canonical readings and rejected rows with reason codes.

A canonical reading (ARCHITECTURE §4) is a meter id, its channel (E1 import, B1 export, …;
the feed's default where the file names none), its source A/B/C, the UTC start of a
30-minute interval, kWh and a quality flag. Every raw row becomes exactly one clean row or one
reject; duplicates across a whole file are the loader's job (they need every chunk).

Checks, in this order (the first that fails is the row's reason): a problem the reader found
(the optional ``problem`` column, below); meter id missing, malformed, of no known source;
channel malformed; timestamp missing, unparseable, in the other day-month order
(``mixed_timestamp_formats``), of a day-month order the file leaves in doubt
(``ambiguous_timestamp``), nonexistent local time (spring forward), an undecidable repeated
local time (``ambiguous_local_time``), in the future, off the 30-minute grid; reading missing,
non-numeric, negative, implausibly high (the meter's capacity in meter.meter, else the feed's
``max_kwh``, else the global one); quality flag invalid.

Timestamps (docs/timestamps-and-channels.md): a feed's ``timestamp_format`` is authoritative
when given. Otherwise each distinct text is classified by regular expressions run by pyarrow
over all of them at once: year first (ISO 8601, with ``T`` or a space, seconds, fraction,
offset or ``Z``; also 2025/02/01) is always year-month-day; a day-month form with ``/``, ``.``
or ``-`` and the year last (15/01/2025, 15.01.25) is read in the feed's ``dayfirst`` order;
a text with a month name (1 Feb 2025) is read by dateutil; anything else is unparseable. A
day-month date that only the other order can read (01/15/2025 in a day-first feed) is rejected
as ``mixed_timestamp_formats``; once a file has one, its dates that read both ways (03/04/2025)
are rejected as ``ambiguous_timestamp``. Until a file has shown a date only the feed's order
can read (13/01/2025), its both-ways dates are held back, so a later contradiction still
rejects them; they are released once the file confirms the order, or at the end of the file.

An offset-less time is local to the feed's zone. A repeated local time (clocks going back) is
resolved by the order of the meter's readings in time, per (meter, channel), whatever order the
file lists them in: such rows are held back to the end of the file (``finish``), the
direction of each series is taken from its first and last unambiguous readings in file order,
and the summer/winter choice is the one that keeps the series monotonic; where more than one
choice does (a lone reading of the repeated hour), the row is rejected as
``ambiguous_local_time``. A time with an explicit offset keeps it.

A reader may set a ``problem`` column: None for a good row, else ``"<reason code>"`` or
``"<reason code>: <message>"`` (``"malformed_record: 300 record has 47 values, expected 48"``);
text that does not start with a reason code is a ``malformed_record`` with that text as its
message. Such a row is rejected with that reason and message, its raw values kept beside the
message (``raw->>'line'``).

Speed: meter ids, timestamps and readings repeat a great deal (21 meters share a timestamp;
readings have a few thousand distinct values), so each column is factorized and every
distinct value is judged once; rows only index the results. Rejects are built the same way:
a detail message per distinct value, the raw row's JSON joined column by column by pyarrow.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from itertools import product
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from meterflow import config
from meterflow.models import (
    CHANNEL_PATTERN,
    CLEAN_COLUMNS,
    REJECT_COLUMNS,
    SOURCES,
    ChannelKind,
    Reason,
    channel_kind,
)
from meterflow.rejects import (
    _REASON_NO,
    REASONS,
    _arrow_text,
    _by_keys,
    _by_value,
    _decoded,
    _factorize,
    _join,
    _json_texts,
    _missing,
    _per_row,
    _problems,
    _show,
    _used,
    _utc_text,
)
from meterflow.stamps import (
    AMBIGUOUS,
    BAD,
    DAY_NS,
    DM_BOTH,
    DM_FEED,
    DM_NONE,
    DM_OTHER,
    MISSING,
    NEGATIVE,
    NONEXISTENT,
    OK,
    OTHER_ORDER,
    UNKNOWN,
    _Stamps,
    parse_texts,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from meterflow.feeds import Feed

STEP_NS = 30 * 60 * 1_000_000_000
QUALITIES = ("A", "E", "S", "F")
MAX_AMBIGUOUS_RUN = 12  # repeated-hour rows of one series and day tried in every combination
RAW_FIELDS = ("meter_id", "channel", "timestamp", "reading", "quality")


# --- the rows of one frame, judged ---------------------------------------------------------


@dataclass
class _Judged:
    """Per row of a raw frame: the verdict and the values of a clean row."""

    reason: np.ndarray  # int16: index in REASONS + 1, 0 for a clean row
    hold: np.ndarray  # bool: kept back (repeated local time; day-month order not yet known)
    meter_ids: np.ndarray
    m_ids: np.ndarray  # the distinct meter ids (cleaned), by m_codes
    m_codes: np.ndarray
    limits: np.ndarray  # kWh limit per distinct meter (by m_codes)
    channels: np.ndarray
    c_codes: np.ndarray
    c_names: np.ndarray  # the channel per distinct raw channel (by c_codes)
    m_sources: np.ndarray  # the source per distinct meter id (by m_codes)
    q_codes: np.ndarray
    q_flags: np.ndarray  # the quality flag per distinct raw flag (by q_codes)
    sources: np.ndarray
    stamps: np.ndarray  # UTC ns of the interval start (summer-time choice where repeated)
    summer: np.ndarray  # UTC ns of the local time read as summer time (before marks/rounding)
    winter: np.ndarray  # UTC ns of the winter-time choice (equal to stamps unless repeated)
    repeated: np.ndarray  # bool: a repeated local time (clocks going back)
    wall: np.ndarray  # wall-clock ns of the local time (groups a repeated hour by day)
    kwh: np.ndarray
    flags: np.ndarray
    problems: np.ndarray  # object: the reader's message, or None


class Cleanser:
    """Cleanses the chunks of one file, in order; ``finish()`` at the end of the file returns
    the rows held back (repeated local times, day-month dates of an order not yet known)."""

    def __init__(
        self,
        feed: Feed,
        *,
        now: datetime,
        max_kwh: float,
        meter_limits: dict[str, float] | None = None,
        earliest: datetime | None = None,
    ) -> None:
        """``max_kwh``: the global limit per 30 minutes; the feed's own ``max_kwh`` overrides
        it, and ``meter_limits`` (meter id -> capacity, from meter.meter) override both.
        ``earliest``: no interval starts before it (setting ``earliest_date``)."""
        self.feed = feed
        self.now_ns = int(now.timestamp() * 1e9)
        self.earliest = earliest or config.get("earliest_date")
        self.earliest_ns = int(self.earliest.timestamp() * 1e9)
        self.max_kwh = float(feed.max_kwh if feed.max_kwh is not None else max_kwh)
        self.meter_limits = meter_limits or {}
        self.channel_pattern = re.compile(CHANNEL_PATTERN)
        self.zone = ZoneInfo(feed.timezone)
        self.pattern = re.compile(feed.meter_id_pattern)
        self._seq = 0  # rows seen: a row's place in the file, across sheets and chunks
        self._held_dm: list[pd.DataFrame] = []  # day-month dates, order not yet known
        self._held_repeated: list[pd.DataFrame] = []  # repeated local times, to the end
        self._order_feed: str | None = None  # a text only the feed's day-month order reads
        self._order_other: str | None = None  # a text only the other order reads
        # (meter, channel) -> ((seq, UTC ns) of its first, (seq, UTC ns) of its last reading)
        self._series: dict[tuple[str, str], list[tuple[int, int]]] = {}

    @property
    def pending(self) -> int:
        """Rows held back, returned by a later ``cleanse`` or by ``finish``."""
        return sum(len(f) for f in self._held_dm) + sum(len(f) for f in self._held_repeated)

    # --- distinct values ----------------------------------------------------------------------

    def _judge_meters(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(status, cleaned id, source) per distinct meter id."""
        import numpy as np

        n = len(uniques)
        status = np.full(n, OK, dtype="int8")
        ids = np.empty(n, dtype=object)
        sources = np.empty(n, dtype=object)
        fixed = None if self.feed.source == "suffix" else self.feed.source
        for i, value in enumerate(uniques):
            if _missing(value):
                status[i] = MISSING
                continue
            text = (
                str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
            )
            text = text.strip()
            ids[i] = text
            if not self.pattern.match(text):
                status[i] = BAD
            elif fixed:
                sources[i] = fixed
            elif text[-1:].upper() in SOURCES:
                sources[i] = text[-1:].upper()
            else:
                status[i] = UNKNOWN
        return status, ids, sources

    def _judge_channels(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(status, channel) per distinct channel; a missing one is the feed's default."""
        import numpy as np

        status = np.full(len(uniques), OK, dtype="int8")
        channels = np.empty(len(uniques), dtype=object)
        for i, value in enumerate(uniques):
            text = self.feed.channel if _missing(value) else str(value).strip().upper()
            channels[i] = text
            if not self.channel_pattern.match(text):
                status[i] = BAD
        return status, channels

    def limit_for(self, meter_id: Any) -> float:
        """The highest plausible kWh per 30 minutes of one meter."""
        return self.meter_limits.get(meter_id, self.max_kwh)

    def _judge_timestamps(self, uniques: np.ndarray) -> tuple[np.ndarray, ...]:
        """(status, UTC ns if summer time, UTC ns if winter time, wall-clock ns, day-month
        class) per distinct timestamp. The two UTC values differ only for a repeated local
        time (status AMBIGUOUS)."""
        import numpy as np
        import pandas as pd

        n = len(uniques)
        status = np.full(n, OK, dtype="int8")
        dst = np.zeros(n, dtype="int64")
        std = np.zeros(n, dtype="int64")
        wall = np.zeros(n, dtype="int64")
        dm = np.full(n, DM_NONE, dtype="int8")
        naive_pos: list[int] = []
        naive_ns: list[int] = []
        text_pos: list[int] = []
        texts: list[str] = []

        if n and all(type(v) is datetime and v.tzinfo is None for v in uniques):
            # workbook date cells: all naive local datetimes, converted in one go below (one
            # by one, as other values, if any is beyond what nanoseconds hold: year 0205)
            try:
                naive_ns = list(pd.DatetimeIndex(list(uniques)).as_unit("ns").asi8)
                naive_pos = list(range(n))
                uniques = ()
            except (ValueError, OverflowError):
                naive_ns = []
        for i, value in enumerate(uniques):
            if _missing(value):
                status[i] = MISSING
            elif isinstance(value, str):
                text_pos.append(i)
                texts.append(value.strip())
            elif isinstance(value, (bool, np.bool_)):
                status[i] = BAD
            elif isinstance(value, (int, float, np.integer, np.floating)):
                # an Excel serial date (days since 1899-12-30), local time
                try:
                    stamp = pd.Timestamp("1899-12-30") + pd.to_timedelta(float(value), "D")
                    naive_ns.append(stamp.as_unit("ns").value)
                    naive_pos.append(i)
                except (ValueError, OverflowError):
                    status[i] = BAD
            else:
                try:
                    stamp = pd.Timestamp(value)
                    if stamp.tzinfo is not None:
                        utc_ns = stamp.tz_convert("UTC").as_unit("ns").round("s").value
                    else:
                        local_ns = stamp.as_unit("ns").value
                except (TypeError, ValueError, OverflowError):  # beyond 1677-2262 too
                    status[i] = BAD
                    continue
                if stamp.tzinfo is not None:
                    dst[i] = std[i] = utc_ns
                else:
                    naive_pos.append(i)
                    naive_ns.append(local_ns)
        if texts:
            parsed = self._parse_texts(texts)
            pos = np.asarray(text_pos)
            status[pos] = parsed.status
            dm[pos] = parsed.dm
            good = parsed.status == OK
            aware = good & parsed.aware
            dst[pos[aware]] = std[pos[aware]] = parsed.ns[aware]
            local = good & ~parsed.aware
            naive_pos.extend(pos[local].tolist())
            naive_ns.extend(parsed.ns[local].tolist())
        if naive_pos:
            index = pd.DatetimeIndex(np.asarray(naive_ns, dtype="datetime64[ns]")).round("s")
            summer = index.tz_localize(
                self.zone, ambiguous=np.ones(len(index), bool), nonexistent="NaT"
            )
            winter = index.tz_localize(
                self.zone, ambiguous=np.zeros(len(index), bool), nonexistent="NaT"
            )
            pos = np.asarray(naive_pos)
            wall[pos] = index.asi8
            gone = np.asarray(summer.isna())
            status[pos[gone]] = NONEXISTENT
            ok = ~gone
            dst[pos[ok]] = summer.asi8[ok]
            std[pos[ok]] = winter.asi8[ok]
            repeated = pos[ok & (summer.asi8 != winter.asi8)]
            status[repeated[status[repeated] == OK]] = AMBIGUOUS
        return status, dst, std, wall, dm

    def _parse_texts(self, texts: list[str]) -> _Stamps:
        """The feed's ``timestamp_format`` when it has one (authoritative), else classified."""
        import numpy as np
        import pandas as pd

        fmt = self.feed.timestamp_format
        if not fmt:
            return parse_texts(texts, self.feed.dayfirst)
        aware = "%z" in fmt or "%Z" in fmt
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(
                pd.Series(texts, dtype=object), format=fmt, errors="coerce", utc=aware
            )
        n = len(texts)
        good = parsed.notna().to_numpy()
        ns = np.zeros(n, dtype="int64")
        values = parsed.dt.tz_localize(None) if aware else parsed
        ns[good] = values[good].astype("datetime64[ns]").to_numpy().astype("int64")
        return _Stamps(
            np.where(good, OK, BAD).astype("int8"),
            ns,
            np.full(n, aware, dtype=bool),
            np.full(n, DM_NONE, dtype="int8"),
        )

    def _judge_readings(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(status, kWh) per distinct reading."""
        import numpy as np
        import pandas as pd

        n = len(uniques)
        status = np.full(n, OK, dtype="int8")
        kwh = np.full(n, np.nan)
        texts: list[str] = []
        text_pos: list[int] = []
        for i, value in enumerate(uniques):
            if _missing(value):
                status[i] = MISSING
            elif isinstance(value, (bool, np.bool_)):
                status[i] = BAD
            elif isinstance(value, (int, float, np.integer, np.floating)):
                kwh[i] = float(value)
            else:
                text = str(value).strip()
                if self.feed.decimal == ",":
                    text = text.replace(".", "").replace(",", ".")
                texts.append(text)
                text_pos.append(i)
        if texts:
            kwh[text_pos] = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
        known = status == OK
        status[known & ~np.isfinite(kwh)] = BAD
        kwh = kwh * self.feed.unit_factor
        fine = status == OK
        status[fine & (kwh < 0)] = NEGATIVE
        return status, kwh

    def _judge_qualities(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        status = np.full(len(uniques), OK, dtype="int8")
        flags = np.empty(len(uniques), dtype=object)
        for i, value in enumerate(uniques):
            flag = self.feed.default_quality if _missing(value) else str(value).strip().upper()
            flags[i] = flag
            if flag not in QUALITIES:
                status[i] = BAD
        return status, flags

    # --- one frame -----------------------------------------------------------------------------

    def _judge(
        self, raw: pd.DataFrame, *, final: bool, choice: np.ndarray | None = None
    ) -> _Judged:
        """Judge every row of ``raw`` (which has a ``_seq`` column).

        ``final``: the end of the file (nothing more is held for its day-month order).
        ``choice``: per row, for repeated local times: 0 summer, 1 winter, -1 undecidable;
        None holds them back."""
        import numpy as np

        n = len(raw)
        reason = np.zeros(n, dtype="int16")

        def reject(mask: np.ndarray, code: Reason) -> None:
            reason[mask & (reason == 0)] = _REASON_NO[code.value]

        problems = np.full(n, None, dtype=object)
        if "problem" in raw:
            codes, messages = _problems(raw["problem"])
            reason[:] = codes
            problems = messages

        m_codes, m_uniques = _factorize(raw["meter_id"])
        m_status, m_ids, m_sources = self._judge_meters(m_uniques)
        row_m_status = _per_row(m_status, m_codes, MISSING)
        reject(row_m_status == MISSING, Reason.MISSING_METER_ID)
        reject(row_m_status == BAD, Reason.MALFORMED_METER_ID)
        reject(row_m_status == UNKNOWN, Reason.UNKNOWN_SOURCE)
        meter_ids = _per_row(m_ids, m_codes, None)

        c_codes, c_uniques = _factorize(raw["channel"])
        c_status, c_names = self._judge_channels(c_uniques)
        reject(_per_row(c_status, c_codes, OK) == BAD, Reason.MALFORMED_CHANNEL)
        channels = _per_row(c_names, c_codes, self.feed.channel)

        t_codes, t_uniques = _factorize(raw["timestamp"])
        t_status, t_dst, t_std, t_wall, t_dm = self._judge_timestamps(t_uniques)
        self._note_order(t_uniques, t_dm)
        row_t_status = _per_row(t_status, t_codes, MISSING)
        row_dm = _per_row(t_dm, t_codes, DM_NONE)
        reject(row_t_status == MISSING, Reason.MISSING_TIMESTAMP)
        reject(row_t_status == BAD, Reason.UNPARSEABLE_TIMESTAMP)
        reject(row_t_status == OTHER_ORDER, Reason.MIXED_TIMESTAMP_FORMATS)
        both_ways = (row_dm == DM_BOTH) & (reason == 0)
        hold = np.zeros(n, dtype=bool)
        if both_ways.any():
            if self._order_other is not None:
                reject(both_ways, Reason.AMBIGUOUS_TIMESTAMP)
            elif self._order_feed is None and not final:
                hold |= both_ways
        reject(row_t_status == NONEXISTENT, Reason.NONEXISTENT_LOCAL_TIME)
        summer = stamps = _per_row(t_dst, t_codes, 0)
        winter = _per_row(t_std, t_codes, 0)
        repeated = (row_t_status == AMBIGUOUS) & (reason == 0)
        if choice is None:
            hold |= repeated
        else:
            reject(repeated & (choice < 0), Reason.AMBIGUOUS_LOCAL_TIME)
            stamps = np.where(repeated & (choice == 1), winter, stamps)
        if self.feed.timestamp_rounding == "floor":
            stamps = stamps // STEP_NS * STEP_NS
        if self.feed.timestamp_marks == "end":
            stamps = stamps - STEP_NS
        reject(stamps + STEP_NS > self.now_ns, Reason.FUTURE_TIMESTAMP)
        reject(stamps < self.earliest_ns, Reason.EARLY_TIMESTAMP)
        reject(stamps % STEP_NS != 0, Reason.MISALIGNED_TIMESTAMP)

        r_codes, r_uniques = _factorize(raw["reading"])
        r_status, r_kwh = self._judge_readings(r_uniques)
        row_r_status = _per_row(r_status, r_codes, MISSING)
        reject(row_r_status == MISSING, Reason.MISSING_READING)
        reject(row_r_status == BAD, Reason.NON_NUMERIC_READING)
        reject(row_r_status == NEGATIVE, Reason.NEGATIVE_READING)
        kwh = _per_row(r_kwh, r_codes, np.nan)
        limit = np.full(len(m_uniques), self.max_kwh)
        if self.meter_limits:
            for i, meter in enumerate(m_ids):
                limit[i] = self.limit_for(meter)
        energy = _per_row(
            np.asarray([channel_kind(c) != ChannelKind.NON_ENERGY for c in c_names], dtype=bool),
            c_codes,
            channel_kind(self.feed.channel) != ChannelKind.NON_ENERGY,
        )  # the limit is in kWh: a kVArh channel is stored, not judged by it
        reject(energy & (kwh > _per_row(limit, m_codes, self.max_kwh)), Reason.IMPLAUSIBLE_READING)

        q_codes, q_uniques = _factorize(raw["quality"])
        q_status, q_flags = self._judge_qualities(q_uniques)
        default_ok = OK if self.feed.default_quality in QUALITIES else BAD
        reject(_per_row(q_status, q_codes, default_ok) == BAD, Reason.INVALID_QUALITY)
        return _Judged(
            reason=reason,
            hold=hold,
            meter_ids=meter_ids,
            m_ids=m_ids,
            m_codes=m_codes,
            limits=limit,
            channels=channels,
            c_codes=c_codes,
            c_names=c_names,
            m_sources=m_sources,
            sources=_per_row(m_sources, m_codes, None),
            stamps=stamps,
            summer=summer,
            winter=winter,
            repeated=repeated,
            wall=_per_row(t_wall, t_codes, 0),
            kwh=kwh,
            flags=_per_row(q_flags, q_codes, self.feed.default_quality),
            q_codes=q_codes,
            q_flags=q_flags,
            problems=problems,
        )

    def _note_order(self, uniques: np.ndarray, dm: np.ndarray) -> None:
        """Remember the first text of the file that only one day-month order reads."""
        import numpy as np

        if self._order_feed is None and (found := np.flatnonzero(dm == DM_FEED)).size:
            self._order_feed = str(uniques[found[0]]).strip()
        if self._order_other is None and (found := np.flatnonzero(dm == DM_OTHER)).size:
            self._order_other = str(uniques[found[0]]).strip()

    def _emit(self, raw: pd.DataFrame, judged: _Judged) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(clean rows, rejects) of the rows not held; held rows are kept for later."""
        import pandas as pd

        good = (judged.reason == 0) & ~judged.hold
        bad = (judged.reason != 0) & ~judged.hold
        if judged.hold.any():
            held = raw[judged.hold]
            repeated = judged.repeated[judged.hold]
            if repeated.any():
                self._held_repeated.append(held[repeated])
            if (~repeated).any():
                self._held_dm.append(held[~repeated])
        self._track(raw["_seq"].to_numpy()[good], judged, good)
        clean = pd.DataFrame(
            {
                "row_no": raw["row_no"].to_numpy(dtype="int64")[good],
                "meter_id": _categorical(judged.m_codes[good], judged.m_ids, None),
                "channel": _categorical(judged.c_codes[good], judged.c_names, self.feed.channel),
                "source": _categorical(judged.m_codes[good], judged.m_sources, None),
                "interval_start": pd.to_datetime(judged.stamps[good], unit="ns", utc=True),
                "kwh": judged.kwh[good],
                "quality": _categorical(
                    judged.q_codes[good], judged.q_flags, self.feed.default_quality
                ),
            },
            columns=CLEAN_COLUMNS,
        )
        return clean, self._rejects(raw, bad, judged)

    def _track(self, seq: np.ndarray, judged: _Judged, good: np.ndarray) -> None:
        """Keep each series' first and last reading in file order (its direction in time)."""
        import numpy as np

        if not len(seq):
            return
        key = judged.m_codes[good] * (int(judged.c_codes.max(initial=0)) + 2) + (
            judged.c_codes[good] + 1
        )
        _, first = np.unique(key, return_index=True)
        _, last = np.unique(key[::-1], return_index=True)
        last = len(key) - 1 - last
        meters, channels = judged.meter_ids[good], judged.channels[good]
        stamps = judged.stamps[good]
        for i, j in zip(first.tolist(), last.tolist(), strict=True):
            name = (meters[i], channels[i])
            known = self._series.get(name)
            if known is None:
                self._series[name] = [(int(seq[i]), int(stamps[i])), (int(seq[j]), int(stamps[j]))]
                continue
            if seq[i] < known[0][0]:
                known[0] = (int(seq[i]), int(stamps[i]))
            if seq[j] > known[1][0]:
                known[1] = (int(seq[j]), int(stamps[j]))

    def cleanse(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(clean rows, rejected rows) of one raw chunk, plus held rows of earlier chunks now
        decided; rows held back are counted by ``pending`` (and come out later)."""
        import numpy as np
        import pandas as pd

        raw = raw.reset_index(drop=True)
        raw["_seq"] = np.arange(self._seq, self._seq + len(raw), dtype="int64")
        self._seq += len(raw)
        clean, rejects = self._emit(raw, self._judge(raw, final=False))
        decided = self._order_feed is not None or self._order_other is not None
        if decided and self._held_dm:
            held = pd.concat(self._held_dm, ignore_index=True)
            self._held_dm = []
            more_clean, more_rejects = self._emit(held, self._judge(held, final=False))
            clean = pd.concat([more_clean, clean], ignore_index=True)
            rejects = pd.concat([more_rejects, rejects], ignore_index=True)
        return clean, rejects

    def finish(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(clean rows, rejects) of every row still held, at the end of the file: day-month
        dates in the feed's order unless the file contradicted it, repeated local times
        resolved by the order of each series in time."""
        import pandas as pd

        frames = self._held_dm + self._held_repeated
        self._held_dm, self._held_repeated = [], []
        if not frames:
            return pd.DataFrame(columns=CLEAN_COLUMNS), pd.DataFrame(columns=REJECT_COLUMNS)
        held = pd.concat(frames, ignore_index=True).sort_values("_seq", ignore_index=True)
        first = self._judge(held, final=True)
        choice = self._choose(held["_seq"].to_numpy(), first)
        return self._emit(held, self._judge(held, final=True, choice=choice))

    def _choose(self, seq: np.ndarray, judged: _Judged) -> np.ndarray:
        """Per row: 0 summer time, 1 winter time, -1 undecidable, for repeated local times.

        A series' repeated hour of one day, in file order, takes the summer/winter choices
        that keep the series strictly monotonic in its direction (from its first and last
        unambiguous readings; both directions when unknown); a row whose choice differs
        between the possible assignments is undecidable."""
        import numpy as np

        choice = np.full(len(seq), -1, dtype="int8")
        rows = np.flatnonzero(judged.repeated)
        groups: dict[tuple, list[int]] = {}
        for i in rows:
            key = (judged.meter_ids[i], judged.channels[i], int(judged.wall[i] // DAY_NS))
            groups.setdefault(key, []).append(int(i))
        for (meter, channel, _), members in groups.items():
            ends = self._series.get((meter, channel))
            if ends and ends[1][1] != ends[0][1]:
                directions = [1 if ends[1][1] > ends[0][1] else -1]
            else:
                directions = [1, -1]
            if len(members) > MAX_AMBIGUOUS_RUN:
                continue
            members.sort(key=lambda i: seq[i])
            options = np.stack([judged.summer[members], judged.winter[members]], axis=1)
            valid = []
            for pick in product((0, 1), repeat=len(members)):
                utc = options[np.arange(len(members)), pick]
                steps = np.diff(utc)
                if any((steps * d > 0).all() for d in directions):
                    valid.append(pick)
            if not valid:
                continue
            picks = np.asarray(valid)
            agreed = (picks == picks[0]).all(axis=0)
            for j, i in enumerate(members):
                if agreed[j]:
                    choice[i] = picks[0][j]
        return choice

    # --- rejects, built in bulk ------------------------------------------------------------------

    def _rejects(self, raw: pd.DataFrame, bad: np.ndarray, judged: _Judged) -> pd.DataFrame:
        """The rejected rows with a message naming the problem and their raw values as JSON.

        Built per distinct value, never per row, in Python: messages per (reason, value),
        JSON fragments per value, joined row by row by pyarrow; text columns are pyarrow-backed
        so that the loader writes them for COPY without converting them again."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = raw[bad]
        n = len(rows)
        reason = judged.reason[bad]
        if not n:
            return pd.DataFrame(columns=REJECT_COLUMNS)
        fields = {name: _used(*_factorize(rows[name])) for name in RAW_FIELDS}
        stamps, kwh = judged.stamps[bad], judged.kwh[bad]
        limits = _per_row(judged.limits, judged.m_codes, self.max_kwh)[bad]
        problems = judged.problems[bad]
        has_problem = pd.notna(problems) if n else np.zeros(0, dtype=bool)
        detail = np.empty(n, dtype=object)
        for number in np.unique(reason[~has_problem]).tolist():
            mask = (reason == number) & ~has_problem
            detail[mask] = self._details(REASONS[number - 1], mask, fields, stamps, kwh, limits)
        detail[has_problem] = problems[has_problem]  # the reader's own message
        # {"meter_id":"SMR89134A","timestamp":"15/01/2025 00:00","reading":"abc"}: missing
        # values left out (raw->>'channel' is NULL either way); compact, as jsonb parses it
        parts: list[Any] = []
        for name in RAW_FIELDS:
            codes, uniques = fields[name]
            texts = [t if t == "null" else f',"{name}":{t}' for t in _json_texts(uniques)]
            texts = ["" if t == "null" else t for t in texts]
            parts.append(_decoded(np.where(codes < 0, len(uniques), codes), texts))
        members = pc.binary_join_element_wise(*parts, "")  # ",k:v,k:v" or ""
        raw_json = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(members, 1), "}", "")
        if has_problem.any():  # the reader's message first, as "line"
            line = pa.array(
                [json.dumps(str(p), ensure_ascii=False) if p is not None else "" for p in problems],
                type=pa.string(),
            )
            with_line = pc.binary_join_element_wise('{"line":', line, members, "}", "")
            raw_json = pc.if_else(pa.array(has_problem), with_line, raw_json)
        m_ids = [m if isinstance(m, str) else None for m in judged.m_ids]
        l_codes, l_uniques = _factorize(rows["location"])
        return pd.DataFrame(
            {
                "row_no": rows["row_no"].to_numpy(dtype="int64"),
                "location": _arrow_text(l_codes, [str(u) for u in l_uniques]),
                "meter_id": _arrow_text(judged.m_codes[bad], m_ids),
                "reason": pd.Categorical.from_codes(
                    reason.astype("int64") - 1, categories=[r.value for r in REASONS]
                ).remove_unused_categories(),
                "detail": pd.arrays.ArrowExtensionArray(pa.array(detail, type=pa.string())),
                "raw": pd.arrays.ArrowExtensionArray(raw_json),
            },
            columns=REJECT_COLUMNS,
        )

    def _details(
        self,
        code: Reason,
        mask: np.ndarray,
        fields: dict[str, tuple[np.ndarray, np.ndarray]],
        stamps: np.ndarray,
        kwh: np.ndarray,
        limits: np.ndarray,
    ) -> np.ndarray:
        """The detail messages of the rows in ``mask``, all rejected for ``code``."""
        import numpy as np

        feed = self.feed
        order = "day/month" if feed.dayfirst else "month/day"
        other = "month/day" if feed.dayfirst else "day/month"

        def by(name: str, message) -> np.ndarray:
            codes, uniques = fields[name]
            return _by_value(codes[mask], uniques, lambda v: message(_show(v)))

        simple = {
            Reason.MISSING_METER_ID: "no meter id",
            Reason.MISSING_TIMESTAMP: "no timestamp",
            Reason.MISSING_READING: "no reading",
        }
        if code in simple:
            return np.full(int(mask.sum()), simple[code], dtype=object)
        if code == Reason.MALFORMED_METER_ID:
            return by(
                "meter_id", lambda m: f"meter id {m!r} does not match {feed.meter_id_pattern}"
            )
        if code == Reason.UNKNOWN_SOURCE:
            return by(
                "meter_id",
                lambda m: (
                    f"meter id {m!r}: suffix {str(m).strip()[-1:]!r} is not a source A, B or C"
                ),
            )
        if code == Reason.MALFORMED_CHANNEL:
            return by(
                "channel",
                lambda c: f"channel {c!r} is not a channel like E1 (import) or B1 (export)",
            )
        if code == Reason.UNPARSEABLE_TIMESTAMP:
            if feed.timestamp_format:
                return by(
                    "timestamp",
                    lambda t: (
                        f"timestamp {t!r} does not match the feed's timestamp_format "
                        f"{feed.timestamp_format!r}"
                    ),
                )
            return by("timestamp", lambda t: f"timestamp {t!r} is not a date and time")
        if code == Reason.MIXED_TIMESTAMP_FORMATS:
            return by(
                "timestamp",
                lambda t: (
                    f"timestamp {t!r} reads only as {other}, but feed {feed.name!r} reads "
                    f"{order} (dayfirst: {str(feed.dayfirst).lower()}); a file keeps one day-month "
                    "order (set dayfirst or timestamp_format)"
                ),
            )
        if code == Reason.AMBIGUOUS_TIMESTAMP:
            seen = self._order_other
            return by(
                "timestamp",
                lambda t: (
                    f"timestamp {t!r} reads as day/month and as month/day, and this file "
                    f"also has {seen!r}, which reads only as {other}: its order cannot be decided "
                    "(set dayfirst or timestamp_format)"
                ),
            )
        if code == Reason.NONEXISTENT_LOCAL_TIME:
            return by(
                "timestamp",
                lambda t: f"{t!r} does not exist in {feed.timezone} (the clocks went forward)",
            )
        if code == Reason.AMBIGUOUS_LOCAL_TIME:
            return by(
                "timestamp",
                lambda t: (
                    f"{t!r} occurs twice in {feed.timezone} (the clocks went back) and the "
                    "order of this meter's readings in time cannot tell which one it is"
                ),
            )
        if code == Reason.EARLY_TIMESTAMP:
            return _by_keys(
                stamps[mask],
                lambda s: (
                    f"interval starting {_utc_text(s)} is before the earliest date "
                    f"{self.earliest:%Y-%m-%d} (setting MF_EARLIEST_DATE)"
                ),
            )
        if code == Reason.FUTURE_TIMESTAMP:
            return _by_keys(
                stamps[mask], lambda s: f"interval starting {_utc_text(s)} is in the future"
            )
        if code == Reason.MISALIGNED_TIMESTAMP:
            return _join(
                [
                    by("timestamp", lambda t: f"timestamp {t!r} ("),
                    _by_keys(stamps[mask], _utc_text),
                    ") is not on the 30-minute grid",
                ]
            )
        if code == Reason.NON_NUMERIC_READING:
            return by("reading", lambda r: f"reading {r!r} is not a number")
        if code == Reason.NEGATIVE_READING:
            return _by_keys(kwh[mask], lambda k: f"reading {k:g} kWh is negative")
        if code == Reason.IMPLAUSIBLE_READING:
            return _join(
                [
                    "reading ",
                    _by_keys(kwh[mask], lambda k: f"{k:g}"),
                    " kWh is above the limit of ",
                    _by_keys(limits[mask], lambda k: f"{k:g}"),
                    " kWh per 30 minutes",
                ]
            )
        if code == Reason.INVALID_QUALITY:
            return by("quality", lambda q: f"quality flag {q!r} is not one of A, E, S, F")
        return np.full(int(mask.sum()), code.value, dtype=object)


def _categorical(codes: np.ndarray, per_value: np.ndarray, missing: Any) -> pd.Categorical:
    """Rows' values as a categorical from their codes into the distinct raw values (code -1:
    ``missing``): the loader then writes codes, not millions of hashed strings."""
    import numpy as np
    import pandas as pd

    values = np.empty(len(per_value) + 1, dtype=object)
    values[:-1] = per_value
    values[-1] = missing
    value_codes, categories = pd.factorize(values, use_na_sentinel=True)
    return pd.Categorical.from_codes(
        value_codes[np.where(codes < 0, len(per_value), codes)], categories=categories
    )
