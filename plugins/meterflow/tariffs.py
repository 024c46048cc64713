"""Tariff windows: which half hours of a local week are peak, read from include/config/tariffs.yaml.

A tariff is evaluated on LOCAL wall-clock time: an interval is peak when its local start time
falls inside a peak window on that local weekday. The week is 7 x 48 half-hour slots (Monday
00:00 is slot 0); a tariff becomes a 336-long peak mask, which the aggregation SQL looks up
per half hour. A clock-change day is still 48 local slot names long: on 2025-03-30 the slots
01:00 and 01:30 never happen (46 intervals), on 2025-10-26 they happen twice (50 intervals),
and 16:00 local is 16:00 local either way.

Loading validates everything and names the offending key, e.g.
``tariffs.yaml: tariffs.peak.peak[0].start: expected "HH:MM" on the half hour, got '16:15'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterflow import CONFIG_DIR

TARIFFS_FILE = CONFIG_DIR / "tariffs.yaml"
SLOTS_PER_DAY = 48
SLOTS_PER_WEEK = 7 * SLOTS_PER_DAY
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SETS = {"weekdays": WEEKDAYS[:5], "weekends": WEEKDAYS[5:], "all": WEEKDAYS}
MAX_TARIFFS = 30  # one bit each in the interval class the SQL groups by (a 32-bit integer)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TIME = re.compile(r"^(\d{2}):(\d{2})$")


class TariffError(ValueError):
    """tariffs.yaml is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Window:
    """A span of local time on some weekdays: [start, end) in minutes after local midnight."""

    days: tuple[int, ...]  # 0 = Monday
    start: int
    end: int  # may be <= start: the window runs over midnight into the next day

    def slots(self) -> set[int]:
        """The week slots (weekday * 48 + half hour) inside this window."""
        out: set[int] = set()
        length = (self.end - self.start) % (24 * 60) or 24 * 60
        for day in self.days:
            first = day * SLOTS_PER_DAY + self.start // 30
            out.update((first + i) % SLOTS_PER_WEEK for i in range(length // 30))
        return out

    def describe(self) -> str:
        days = next(
            (name for name, members in DAY_SETS.items() if self.days == _day_numbers(members)),
            ",".join(WEEKDAYS[d] for d in self.days),
        )
        return f"{days} {_hhmm(self.start)}–{_hhmm(self.end)}"


@dataclass(frozen=True)
class Tariff:
    name: str
    description: str
    kind: str  # "peak": windows are peak; "off_peak": windows are off-peak, the rest is peak
    windows: tuple[Window, ...]
    peak_label: str = "peak"
    off_peak_label: str = "off-peak"

    @property
    def week_mask(self) -> tuple[bool, ...]:
        """336 booleans: True when the week slot (weekday * 48 + half hour) is peak."""
        inside: set[int] = set()
        for w in self.windows:
            inside |= w.slots()
        peak_inside = self.kind == "peak"
        return tuple((slot in inside) == peak_inside for slot in range(SLOTS_PER_WEEK))

    def is_peak(self, local: datetime) -> bool:
        """Whether the half hour starting at this local wall-clock time is peak."""
        return self.week_mask[week_slot(local)]

    def peak_slots(self, weekday: int) -> list[int]:
        """The half hours (0-47) of local ``weekday`` (0 = Monday) that are peak."""
        mask = self.week_mask
        return [s for s in range(SLOTS_PER_DAY) if mask[weekday * SLOTS_PER_DAY + s]]

    def describe(self) -> str:
        spans = "; ".join(w.describe() for w in self.windows)
        label = self.peak_label if self.kind == "peak" else self.off_peak_label
        return f"{self.name}: {label} {spans}"


@dataclass(frozen=True)
class TariffSet:
    timezone: str
    default: str
    tariffs: dict[str, Tariff]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def names(self) -> list[str]:
        return list(self.tariffs)

    def get(self, name: str | None = None) -> Tariff:
        """The tariff ``name`` (the default tariff when None)."""
        key = name or self.default
        if key not in self.tariffs:
            raise TariffError(f"unknown tariff {key!r}; tariffs.yaml defines {self.names}")
        return self.tariffs[key]

    def bits(self) -> dict[str, int]:
        """Each tariff's bit in the interval class (first tariff 1, second 2, third 4, ...)."""
        return {name: 1 << i for i, name in enumerate(self.tariffs)}

    def class_codes(self) -> list[int]:
        """336 integers, one per week slot: the OR of the bits of the tariffs peak in it.

        The aggregation groups readings by this class, so one scan of the readings serves
        every tariff: tariff t's peak sum is the sum over classes with t's bit set.
        """
        codes = [0] * SLOTS_PER_WEEK
        for bit, tariff in zip(self.bits().values(), self.tariffs.values(), strict=True):
            for slot, peak in enumerate(tariff.week_mask):
                if peak:
                    codes[slot] |= bit
        return codes


def week_slot(local: datetime) -> int:
    """Slot of the local week: Monday 00:00 is 0, Sunday 23:30 is 335."""
    return local.weekday() * SLOTS_PER_DAY + local.hour * 2 + local.minute // 30


def load(path: Path | str = TARIFFS_FILE, *, default_timezone: str | None = None) -> TariffSet:
    """Read and validate a tariffs file (default include/config/tariffs.yaml)."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TariffError(f"{path.name}: not valid YAML: {exc}") from exc
    if default_timezone is None:
        from meterflow import config

        default_timezone = config.get("local_tz")
    return parse(doc, source=path.name, default_timezone=default_timezone)


def parse(doc: Any, *, source: str = "tariffs.yaml", default_timezone: str) -> TariffSet:
    """Validate a parsed tariffs document; errors name ``source`` and the key."""

    def fail(key: str, problem: str) -> TariffError:
        return TariffError(f"{source}: {key}: {problem}")

    if not isinstance(doc, dict):
        raise fail("(top level)", "expected a mapping with 'tariffs'")
    unknown = set(doc) - {"timezone", "default", "tariffs"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown key (expected timezone, default, tariffs)")
    tz = doc.get("timezone") or default_timezone
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise fail("timezone", f"unknown time zone {tz!r}") from exc
    raw = doc.get("tariffs")
    if not isinstance(raw, dict) or not raw:
        raise fail("tariffs", "expected a mapping of tariff name to definition")
    if len(raw) > MAX_TARIFFS:
        raise fail("tariffs", f"at most {MAX_TARIFFS} tariffs, got {len(raw)}")
    tariffs = {}
    for name, body in raw.items():
        key = f"tariffs.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise fail(key, "tariff names are lower_snake_case (a-z, 0-9, _), at most 40 long")
        tariffs[name] = _tariff(name, body, key, fail)
    default = doc.get("default", next(iter(tariffs)))
    if default not in tariffs:
        raise fail("default", f"{default!r} is not one of the tariffs {list(tariffs)}")
    return TariffSet(timezone=str(tz), default=default, tariffs=tariffs)


def _tariff(name: str, body: Any, key: str, fail) -> Tariff:
    if not isinstance(body, dict):
        raise fail(key, "expected a mapping with 'peak' or 'off_peak' windows")
    unknown = set(body) - {"description", "labels", "peak", "off_peak"}
    if unknown:
        raise fail(f"{key}.{sorted(unknown)[0]}", "unknown key")
    kinds = [k for k in ("peak", "off_peak") if k in body]
    if len(kinds) != 1:
        raise fail(key, "give exactly one of 'peak' or 'off_peak' (a list of windows)")
    kind = kinds[0]
    items = body[kind]
    if not isinstance(items, list) or not items:
        raise fail(f"{key}.{kind}", "expected a non-empty list of windows")
    windows = tuple(_window(item, f"{key}.{kind}[{i}]", fail) for i, item in enumerate(items))
    labels = body.get("labels") or {}
    if not isinstance(labels, dict) or set(labels) - {"peak", "off_peak"}:
        raise fail(f"{key}.labels", "expected a mapping with keys peak and off_peak")
    return Tariff(
        name=name,
        description=str(body.get("description", "")).strip(),
        kind=kind,
        windows=windows,
        peak_label=str(labels.get("peak", "peak")),
        off_peak_label=str(labels.get("off_peak", "off-peak")),
    )


def _window(item: Any, key: str, fail) -> Window:
    if not isinstance(item, dict) or set(item) != {"days", "start", "end"}:
        raise fail(key, "expected a mapping with exactly days, start, end")
    days = item["days"]
    names = DAY_SETS.get(days) if isinstance(days, str) else days
    if not isinstance(names, (list, tuple)) or not names:
        raise fail(f"{key}.days", f"expected weekday names or weekdays/weekends/all, got {days!r}")
    bad = [d for d in names if d not in WEEKDAYS]
    if bad:
        raise fail(f"{key}.days", f"unknown weekday {bad[0]!r} (use {', '.join(WEEKDAYS)})")
    start = _minutes(item["start"], f"{key}.start", fail, allow_24=False)
    end = _minutes(item["end"], f"{key}.end", fail, allow_24=True)
    if start == end:
        raise fail(key, "start and end are equal: an empty window")
    return Window(days=_day_numbers(names), start=start, end=end % (24 * 60))


def _minutes(value: Any, key: str, fail, *, allow_24: bool) -> int:
    m = _TIME.match(str(value)) if isinstance(value, str) else None
    if m:
        hours, minutes = int(m.group(1)), int(m.group(2))
        total = hours * 60 + minutes
        if minutes in (0, 30) and (total < 24 * 60 or (allow_24 and total == 24 * 60)):
            return total
    upper = '"24:00"' if allow_24 else '"23:30"'
    hint = (
        " (quote times: YAML reads an unquoted 16:00 as a number)" if isinstance(value, int) else ""
    )
    raise fail(key, f'expected "HH:MM" on the half hour, "00:00" to {upper}, got {value!r}{hint}')


def _day_numbers(names) -> tuple[int, ...]:
    return tuple(sorted({WEEKDAYS.index(d) for d in names}))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
