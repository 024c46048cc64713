"""Cleansing: raw rows of a reader → canonical readings and rejected rows with reason codes.

A canonical reading (ARCHITECTURE §4) is a meter id, its channel (E1 import, B1 export, …;
the feed's default where the file names none), its source A/B/C, the UTC start of a
30-minute interval, kWh and a quality flag. Every raw row becomes exactly one clean row or one
reject; duplicates across a whole file are the loader's job (they need every chunk).

Checks, in this order (the first that fails is the row's reason): malformed record; meter id
missing, malformed, of no known source; channel malformed; timestamp missing, unparseable,
nonexistent local time (spring forward), in the future, off the 30-minute grid; reading missing,
non-numeric, negative, implausibly high (the meter's capacity in meter.meter, else the feed's
``max_kwh``, else the global one); quality flag invalid.

Time: an offset-less time is local to the feed's zone. An ambiguous local time (the repeated
hour when clocks go back) is resolved by order: a meter's first row at that local time is the
summer-time one, its second the winter-time one. A time with an explicit offset keeps it.

Speed: meter ids, timestamps and readings repeat a great deal (21 meters share a timestamp;
readings have a few thousand distinct values), so each column is factorized and every
distinct value is judged once; rows only index the results. A chunk of 250k rows costs tens of
milliseconds plus its distinct timestamps.
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from meterflow.models import CHANNEL_PATTERN, CLEAN_COLUMNS, REJECT_COLUMNS, SOURCES, Reason

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from meterflow.feeds import Feed

STEP_NS = 30 * 60 * 1_000_000_000
QUALITIES = ("A", "E", "S", "F")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)

# status codes of distinct values
OK, MISSING, BAD, NONEXISTENT, AMBIGUOUS, NEGATIVE, HIGH, UNKNOWN = range(8)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    if isinstance(value, str) and not value.strip():
        return True
    try:
        import pandas as pd

        return value is pd.NaT or (not isinstance(value, str) and bool(pd.isna(value)))
    except (TypeError, ValueError):
        return False


def _factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values); code -1 is a missing value."""
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(dtype="int64"), np.asarray(
            values.cat.categories, dtype=object
        )
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    return codes.astype("int64"), np.asarray(uniques, dtype=object)


def _per_row(per_value: np.ndarray, codes: np.ndarray, missing: Any) -> np.ndarray:
    """Index per-distinct-value results by row codes; code -1 takes ``missing``."""
    import numpy as np

    extended = np.empty(len(per_value) + 1, dtype=per_value.dtype)
    extended[:-1] = per_value
    extended[-1] = missing
    return extended[codes]


class Cleanser:
    """Cleanses the chunks of one file, in order (ambiguous local times are resolved by order
    across chunks)."""

    def __init__(
        self,
        feed: Feed,
        *,
        now: datetime,
        max_kwh: float,
        meter_limits: dict[str, float] | None = None,
    ) -> None:
        """``max_kwh``: the global limit per 30 minutes; the feed's own ``max_kwh`` overrides
        it, and ``meter_limits`` (meter id -> capacity, from meter.meter) override both."""
        self.feed = feed
        self.now_ns = int(now.timestamp() * 1e9)
        self.max_kwh = float(feed.max_kwh if feed.max_kwh is not None else max_kwh)
        self.meter_limits = meter_limits or {}
        self.channel_pattern = re.compile(CHANNEL_PATTERN)
        self.zone = ZoneInfo(feed.timezone)
        self.pattern = re.compile(feed.meter_id_pattern)
        self._seen_ambiguous: dict[tuple[str, int], int] = {}

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

    def _judge_timestamps(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(status, UTC ns if summer time, UTC ns if winter time) per distinct timestamp.

        The two UTC values differ only for an ambiguous local time; rows choose by order."""
        import numpy as np
        import pandas as pd

        n = len(uniques)
        status = np.full(n, OK, dtype="int8")
        dst = np.zeros(n, dtype="int64")
        std = np.zeros(n, dtype="int64")
        naive_pos, naive_vals, aware_pos, aware_vals, text_pos, text_vals = [], [], [], [], [], []

        def keep(pos: int, stamp) -> None:
            # a parsed timestamp goes to the aware or the naive (local time) list
            pos_list, vals = (
                (aware_pos, aware_vals) if stamp.tzinfo is not None else (naive_pos, naive_vals)
            )
            pos_list.append(pos)
            vals.append(stamp)

        if n and all(type(v) is datetime and v.tzinfo is None for v in uniques):
            # workbook date cells: all naive local datetimes, converted in one go below
            naive_pos, naive_vals = list(range(n)), list(uniques)
            uniques = ()
        for i, value in enumerate(uniques):
            if _missing(value):
                status[i] = MISSING
            elif isinstance(value, str):
                text = value.strip()
                if _OFFSET.search(text):
                    aware_pos.append(i)
                    aware_vals.append(text)
                else:
                    text_pos.append(i)
                    text_vals.append(text)
            elif isinstance(value, (bool, np.bool_)):
                status[i] = BAD
            elif isinstance(value, (int, float, np.integer, np.floating)):
                # an Excel serial date (days since 1899-12-30), local time
                try:
                    naive_vals.append(
                        pd.Timestamp("1899-12-30") + pd.to_timedelta(float(value), "D")
                    )
                    naive_pos.append(i)
                except (ValueError, OverflowError):
                    status[i] = BAD
            else:
                try:
                    stamp = pd.Timestamp(value)
                except (TypeError, ValueError):
                    status[i] = BAD
                    continue
                keep(i, stamp)
        if text_vals:
            parsed = self._parse_local_text(text_vals)
            for pos, stamp in zip(text_pos, parsed, strict=True):
                if stamp is pd.NaT or pd.isna(stamp):
                    status[pos] = BAD
                else:
                    keep(pos, stamp)
        if aware_vals:
            parsed = self._parse_aware(aware_vals)
            for pos, stamp in zip(aware_pos, parsed, strict=True):
                if pd.isna(stamp):
                    status[pos] = BAD
                else:
                    dst[pos] = std[pos] = stamp.value
        if naive_vals:
            index = pd.DatetimeIndex(naive_vals).as_unit("ns").round("s")
            summer = index.tz_localize(
                self.zone, ambiguous=np.ones(len(index), bool), nonexistent="NaT"
            )
            winter = index.tz_localize(
                self.zone, ambiguous=np.zeros(len(index), bool), nonexistent="NaT"
            )
            pos = np.asarray(naive_pos)
            gone = np.asarray(summer.isna())
            status[pos[gone]] = NONEXISTENT
            ok = ~gone
            dst[pos[ok]] = summer.asi8[ok]
            std[pos[ok]] = winter.asi8[ok]
            status[pos[ok & (summer.asi8 != winter.asi8)]] = AMBIGUOUS
        return status, dst, std

    def _parse_local_text(self, texts: list[str]) -> list:
        import pandas as pd

        series = pd.Series(texts, dtype=object)
        fmt = self.feed.timestamp_format
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = (
                pd.to_datetime(series, format=fmt, dayfirst=self.feed.dayfirst, errors="coerce")
                if fmt
                else self._infer(series)
            )
            result = list(first)
            retry = [i for i, v in enumerate(result) if pd.isna(v)]
            if retry:
                for i in retry:
                    try:
                        result[i] = pd.to_datetime(
                            texts[i], format="mixed", dayfirst=self.feed.dayfirst
                        )
                    except (ValueError, OverflowError, TypeError):
                        result[i] = pd.NaT
        return result

    def _infer(self, series: pd.Series) -> pd.Series:
        """Parse with the format of the first value, fast; NaT where it does not fit."""
        import pandas as pd

        try:
            return pd.to_datetime(series, dayfirst=self.feed.dayfirst, errors="coerce")
        except (ValueError, TypeError):
            return pd.Series([pd.NaT] * len(series))

    def _parse_aware(self, values: list) -> list:
        import pandas as pd

        out = []
        for value in values:
            try:
                stamp = pd.Timestamp(value) if not isinstance(value, pd.Timestamp) else value
                if stamp.tzinfo is None:
                    raise ValueError("no offset")
                out.append(stamp.tz_convert("UTC").as_unit("ns").round("s"))
            except (ValueError, TypeError, OverflowError):
                out.append(pd.NaT)
        return out

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

    # --- one chunk ----------------------------------------------------------------------------

    def cleanse(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(clean rows, rejected rows) of one raw chunk; together exactly its rows."""
        import numpy as np
        import pandas as pd

        raw = raw.reset_index(drop=True)
        n = len(raw)
        reason = np.full(n, "", dtype=object)

        def reject(mask: np.ndarray, code: Reason) -> None:
            reason[mask & (reason == "")] = code.value

        if "problem" in raw:
            reject(raw["problem"].notna().to_numpy(), Reason.MALFORMED_RECORD)

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
        t_status, t_dst, t_std = self._judge_timestamps(t_uniques)
        row_t_status = _per_row(t_status, t_codes, MISSING)
        reject(row_t_status == MISSING, Reason.MISSING_TIMESTAMP)
        reject(row_t_status == BAD, Reason.UNPARSEABLE_TIMESTAMP)
        reject(row_t_status == NONEXISTENT, Reason.NONEXISTENT_LOCAL_TIME)
        stamps = _per_row(t_dst, t_codes, 0)
        ambiguous = np.flatnonzero((row_t_status == AMBIGUOUS) & (reason == ""))
        if len(ambiguous):
            winter = _per_row(t_std, t_codes, 0)
            for i in ambiguous:  # few rows: two local hours a year per meter
                key = (meter_ids[i], int(t_dst[t_codes[i]]))
                seen = self._seen_ambiguous.get(key, 0)
                self._seen_ambiguous[key] = seen + 1
                if seen:
                    stamps[i] = winter[i]
        if self.feed.timestamp_rounding == "floor":
            stamps = stamps // STEP_NS * STEP_NS
        if self.feed.timestamp_marks == "end":
            stamps = stamps - STEP_NS
        reject(stamps + STEP_NS > self.now_ns, Reason.FUTURE_TIMESTAMP)
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
        reject(kwh > _per_row(limit, m_codes, self.max_kwh), Reason.IMPLAUSIBLE_READING)

        q_codes, q_uniques = _factorize(raw["quality"])
        q_status, q_flags = self._judge_qualities(q_uniques)
        default_ok = OK if self.feed.default_quality in QUALITIES else BAD
        reject(_per_row(q_status, q_codes, default_ok) == BAD, Reason.INVALID_QUALITY)

        good = reason == ""
        clean = pd.DataFrame(
            {
                "row_no": raw["row_no"].to_numpy(dtype="int64")[good],
                "meter_id": meter_ids[good],
                "channel": channels[good],
                "source": _per_row(m_sources, m_codes, None)[good],
                "interval_start": pd.to_datetime(stamps[good], unit="ns", utc=True),
                "kwh": kwh[good],
                "quality": _per_row(q_flags, q_codes, self.feed.default_quality)[good],
            },
            columns=CLEAN_COLUMNS,
        )
        rejects = self._rejects(raw, ~good, reason, meter_ids, stamps, kwh)
        return clean, rejects

    def _rejects(self, raw, bad, reason, meter_ids, stamps, kwh) -> pd.DataFrame:
        import pandas as pd

        rows = raw[bad]
        details = []
        raws = []
        idx = bad.nonzero()[0]
        problems = raw.get("problem")
        for i, rec in zip(idx, rows.itertuples(index=False), strict=True):
            values = {
                "meter_id": _show(rec.meter_id),
                "channel": _show(rec.channel),
                "timestamp": _show(rec.timestamp),
                "reading": _show(rec.reading),
                "quality": _show(rec.quality),
            }
            code = reason[i]
            problem = problems.iloc[i] if problems is not None else None
            details.append(self._detail(code, values, stamps[i], kwh[i], problem, meter_ids[i]))
            if code == Reason.MALFORMED_RECORD.value:
                values = {"line": problem}
            raws.append(json.dumps(values, ensure_ascii=False))
        return pd.DataFrame(
            {
                "row_no": rows["row_no"].to_numpy(dtype="int64"),
                "location": rows["location"].to_numpy(dtype=object),
                "meter_id": [m if isinstance(m, str) else None for m in meter_ids[bad]],
                "reason": reason[bad],
                "detail": details,
                "raw": raws,
            },
            columns=REJECT_COLUMNS,
        )

    def _detail(
        self, code: str, values: dict, stamp: int, kwh: float, problem: Any, meter_id: Any
    ) -> str:
        meter, ts, reading, quality = (
            values["meter_id"],
            values["timestamp"],
            values["reading"],
            values["quality"],
        )
        start = _utc_text(stamp)
        messages = {
            Reason.MALFORMED_RECORD: lambda: str(problem),
            Reason.MISSING_METER_ID: lambda: "no meter id",
            Reason.MALFORMED_METER_ID: lambda: (
                f"meter id {meter!r} does not match {self.feed.meter_id_pattern}"
            ),
            Reason.UNKNOWN_SOURCE: lambda: (
                f"meter id {meter!r}: suffix {str(meter).strip()[-1:]!r} is not a source A, B or C"
            ),
            Reason.MALFORMED_CHANNEL: lambda: (
                f"channel {values['channel']!r} is not a channel like E1 (import) or B1 (export)"
            ),
            Reason.MISSING_TIMESTAMP: lambda: "no timestamp",
            Reason.UNPARSEABLE_TIMESTAMP: lambda: f"timestamp {ts!r} is not a date and time",
            Reason.NONEXISTENT_LOCAL_TIME: lambda: (
                f"{ts!r} does not exist in {self.feed.timezone} (the clocks went forward)"
            ),
            Reason.FUTURE_TIMESTAMP: lambda: f"interval starting {start} is in the future",
            Reason.MISALIGNED_TIMESTAMP: lambda: (
                f"timestamp {ts!r} ({start}) is not on the 30-minute grid"
            ),
            Reason.MISSING_READING: lambda: "no reading",
            Reason.NON_NUMERIC_READING: lambda: f"reading {reading!r} is not a number",
            Reason.NEGATIVE_READING: lambda: f"reading {kwh:g} kWh is negative",
            Reason.IMPLAUSIBLE_READING: lambda: (
                f"reading {kwh:g} kWh is above the limit of {self.limit_for(meter_id):g} kWh "
                "per 30 minutes"
            ),
            Reason.INVALID_QUALITY: lambda: f"quality flag {quality!r} is not one of A, E, S, F",
        }
        return messages[Reason(code)]()


def _show(value: Any) -> Any:
    """A raw value as JSON can hold it (text for dates, None for missing)."""
    if _missing(value):
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    return str(value)


def _utc_text(ns: int) -> str:
    from datetime import UTC

    try:
        return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "?"
