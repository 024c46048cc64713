"""Feeds: how each kind of landed file is read, from include/config/feeds.yaml.

A feed owns one landing subfolder and says how its files are laid out (long, wide, NEM12,
packets or auto), which columns mean what, which zone local times are in, the units, whether a
timestamp marks an interval's start or end, and how the source A/B/C is decided. A user adds a
file shape by adding a feed — YAML only. A bad feed file fails with a message naming the key,
e.g. ``feeds.yaml: feeds.nem12.timestamp_marks: expected one of start, end, got 'ending'``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterflow import CONFIG_DIR
from meterflow.models import CHANNEL_PATTERN, DEFAULT_CHANNEL

FEEDS_FILE = CONFIG_DIR / "feeds.yaml"
LAYOUTS = ("auto", "long", "wide", "nem12", "packets")
UNITS = {"kwh": 1.0, "wh": 0.001, "mwh": 1000.0}
COLUMN_ROLES = ("meter_id", "channel", "timestamp", "reading", "quality")
RESERVED_FOLDERS = {"processed", "failed"}


class FeedError(ValueError):
    """feeds.yaml is wrong; the message names the key."""


@dataclass(frozen=True)
class Feed:
    name: str
    folder: str
    layout: str = "auto"
    patterns: tuple[str, ...] = ("*",)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    timezone: str = "Europe/London"
    dayfirst: bool = True
    timestamp_format: str | None = None
    units: str = "kWh"
    interval_minutes: int = 30
    timestamp_marks: str = "start"
    timestamp_rounding: str = "none"
    source: str = "suffix"
    meter_id_pattern: str = r"^SMR\d{5}[A-Z]$"
    sheets: str | tuple[str, ...] = "all"
    header_row: int | str = "auto"
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    decimal: str = "."
    default_quality: str = "A"
    channel: str = DEFAULT_CHANNEL  # channel of readings whose file names none
    max_kwh: float | None = None  # the feed's limit per 30 minutes; None: MF_MAX_KWH

    @property
    def unit_factor(self) -> float:
        """Multiplier from the feed's reading unit to kWh."""
        return UNITS[self.units.lower()]

    def aliases(self, role: str) -> tuple[str, ...]:
        """Header names (lower case) that mean ``role`` in this feed."""
        return tuple(a.lower() for a in self.columns.get(role, (role,)))

    def takes(self, path: Path) -> bool:
        """Does a file name match one of the patterns? In any case: distributors send
        ``.ZIP`` and ``.CSV`` as often as ``.zip`` and ``.csv``."""
        name = path.name.lower()
        return any(fnmatch.fnmatchcase(name, p.lower()) for p in self.patterns)


def _fail(key: str, problem: str) -> FeedError:
    return FeedError(f"feeds.yaml: {key}: {problem}")


def _choice(key: str, value: Any, options: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise _fail(key, f"expected one of {', '.join(options)}, got {value!r}")
    return value


def _names(key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise _fail(key, f"expected a name or a list of names, got {value!r}")
    return tuple(items)


def _parse_feed(name: str, spec: Any, defaults: dict[str, Any]) -> Feed:
    key = f"feeds.{name}"
    if not isinstance(spec, dict):
        raise _fail(key, f"expected a mapping of settings, got {spec!r}")
    merged = {**defaults, **spec}
    known = {f for f in Feed.__dataclass_fields__ if f != "name"}
    for k in merged:
        if k not in known:
            raise _fail(f"{key}.{k}", f"unknown setting (known: {', '.join(sorted(known))})")
    folder = merged.get("folder")
    if not isinstance(folder, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", folder):
        raise _fail(f"{key}.folder", f"expected a folder name, got {folder!r}")
    if folder in RESERVED_FOLDERS:
        raise _fail(f"{key}.folder", f"{folder!r} is reserved for handled files")
    out: dict[str, Any] = {"name": name, "folder": folder}
    out["layout"] = _choice(f"{key}.layout", merged.get("layout", "auto"), LAYOUTS)
    out["patterns"] = _names(f"{key}.patterns", merged.get("patterns", "*"))
    columns = merged.get("columns", {})
    if not isinstance(columns, dict):
        raise _fail(f"{key}.columns", f"expected a mapping of role to header name, got {columns!r}")
    for role in columns:
        _choice(f"{key}.columns.{role}", role, COLUMN_ROLES)
    out["columns"] = {r: _names(f"{key}.columns.{r}", v) for r, v in columns.items()}
    tz = merged.get("timezone", "Europe/London")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"{key}.timezone", f"unknown time zone {tz!r}") from None
    out["timezone"] = str(tz)
    for flag in ("dayfirst",):
        value = merged.get(flag, True)
        if not isinstance(value, bool):
            raise _fail(f"{key}.{flag}", f"expected true or false, got {value!r}")
        out[flag] = value
    fmt = merged.get("timestamp_format")
    if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
        raise _fail(f"{key}.timestamp_format", f"expected a strptime format, got {fmt!r}")
    out["timestamp_format"] = fmt
    units = merged.get("units", "kWh")
    if not isinstance(units, str) or units.lower() not in UNITS:
        raise _fail(f"{key}.units", f"expected one of kWh, Wh, MWh, got {units!r}")
    out["units"] = units
    minutes = merged.get("interval_minutes", 30)
    if minutes not in (5, 15, 30):
        raise _fail(f"{key}.interval_minutes", f"expected 5, 15 or 30, got {minutes!r}")
    if minutes != 30 and out["layout"] != "nem12":
        raise _fail(
            f"{key}.interval_minutes",
            f"{minutes}-minute data is summed to 30 minutes for NEM12 only; "
            "give 30 for this layout",
        )
    out["interval_minutes"] = minutes
    out["timestamp_marks"] = _choice(
        f"{key}.timestamp_marks", merged.get("timestamp_marks", "start"), ("start", "end")
    )
    out["timestamp_rounding"] = _choice(
        f"{key}.timestamp_rounding", merged.get("timestamp_rounding", "none"), ("none", "floor")
    )
    out["source"] = _choice(
        f"{key}.source", merged.get("source", "suffix"), ("suffix", "A", "B", "C")
    )
    pattern = merged.get("meter_id_pattern", Feed.meter_id_pattern)
    try:
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise _fail(f"{key}.meter_id_pattern", f"not a regular expression: {exc}") from None
    out["meter_id_pattern"] = pattern
    sheets = merged.get("sheets", "all")
    out["sheets"] = "all" if sheets == "all" else _names(f"{key}.sheets", sheets)
    header = merged.get("header_row", "auto")
    if header != "auto" and not (isinstance(header, int) and header >= 1):
        raise _fail(f"{key}.header_row", f"expected auto or a row number from 1, got {header!r}")
    out["header_row"] = header
    for k, default in (("encoding", "utf-8-sig"), ("delimiter", ","), ("decimal", ".")):
        value = merged.get(k, default)
        if not isinstance(value, str) or not value:
            raise _fail(f"{key}.{k}", f"expected a text value, got {value!r}")
        out[k] = value
    if len(out["delimiter"]) != 1 or out["decimal"] not in (".", ","):
        raise _fail(f"{key}.delimiter", "expected a one-character delimiter and decimal . or ,")
    out["default_quality"] = _choice(
        f"{key}.default_quality", merged.get("default_quality", "A"), ("A", "E", "S", "F")
    )
    channel = merged.get("channel", DEFAULT_CHANNEL)
    if not isinstance(channel, str) or not re.match(CHANNEL_PATTERN, channel):
        raise _fail(
            f"{key}.channel", f"expected a channel like E1 (import) or B1 (export), got {channel!r}"
        )
    out["channel"] = channel
    limit = merged.get("max_kwh")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0
    ):
        raise _fail(f"{key}.max_kwh", f"expected a positive number of kWh, got {limit!r}")
    out["max_kwh"] = None if limit is None else float(limit)
    return Feed(**out)


def parse_feeds(data: Any) -> dict[str, Feed]:
    """Validated feeds from the parsed YAML document."""
    if not isinstance(data, dict) or not isinstance(data.get("feeds"), dict) or not data["feeds"]:
        raise _fail("feeds", "expected a mapping of feed name to settings")
    defaults = data.get("defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise _fail("defaults", f"expected a mapping, got {defaults!r}")
    unknown = set(data) - {"defaults", "feeds"}
    if unknown:
        raise _fail(sorted(unknown)[0], "unknown top-level key (expected defaults, feeds)")
    result: dict[str, Feed] = {}
    folders: dict[str, str] = {}
    for name, spec in data["feeds"].items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
            raise _fail(f"feeds.{name}", "a feed name is lower case letters, digits and _")
        feed = _parse_feed(str(name), spec, defaults)
        if feed.folder in folders:
            raise _fail(
                f"feeds.{name}.folder",
                f"folder {feed.folder!r} is also feed {folders[feed.folder]!r}",
            )
        folders[feed.folder] = feed.name
        result[feed.name] = feed
    return result


def load_feeds(path: Path | None = None) -> dict[str, Feed]:
    import yaml

    path = Path(path or FEEDS_FILE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FeedError(f"{path.name}: not valid YAML: {exc}") from None
    return parse_feeds(data)


def feed_for_path(path: Path, landing: Path, known: dict[str, Feed] | None = None) -> Feed | None:
    """The feed that takes a landed file: by its folder under landing/, then its name."""
    path, landing = Path(path), Path(landing)
    try:
        folder = path.resolve().relative_to(landing.resolve()).parts[0]
    except (ValueError, IndexError):
        return None
    for feed in (known or load_feeds()).values():
        if feed.folder == folder and feed.takes(path):
            return feed
    return None
