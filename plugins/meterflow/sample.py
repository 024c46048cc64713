"""Sample meter data for the demo and for trying feeds: ``python -m meterflow.sample``.

Writes one folder per feed (``spreadsheets/``, ``nem12/``, ``stream/``) under the output
folder, plus ``manifest.json`` there, describing every file: rows, meters, days and the faults
put in on purpose. The data:

- 63 meters: SMR89134…SMR89154 with suffix A, B and C (21 per source), readings every half hour
  in Europe/London local time (the interval's start), for ``--days`` whole days ending
  yesterday. A clock-change day in the range has its 46 or 50 half hours.
- A household-like profile: a night base load, a morning bump, an evening peak 16:00–19:00
  local, more at weekends in the day; deterministic for a seed.
- Source A as a long workbook (meter_id, timestamp, reading_kWh, quality; one sheet per week),
  source B as a wide CSV (timestamp plus one column per meter, as SMR89134B…SMR89154B), source
  C as a wide workbook for all but the last week, whose C readings come as a NEM12 zip (5-minute
  intervals, interval-ending AEST); the last two days of every meter as stream packets
  (``{"id", "timestamp", "reading_kWh"}``, sent a minute after the interval ends).
- Channels: every file above is import energy, channel E1 (the feeds' default). Five meters
  have rooftop solar (SMR89136A, SMR89141A, SMR89139B, SMR89147B, SMR89144C): their export,
  channel B1, comes in its own file (``channels_<first>_<last>.csv``, wide, one column per
  ``<meter> <channel>``) for every day, with a PV shape — zero at night, a midday hump whose
  height and width follow the season, cloudy and clear days. In the same file SMR89150A has a
  controlled-load (off-peak hot water) import channel E2, and SMR89153B a reactive channel Q1
  (kVArh: stored, never summed into kWh).
- Faults, about 0.2 % of rows, each of a kind cleansing must catch: blank and non-numeric
  readings, negative and implausible ones, bad meter ids, misaligned and future timestamps,
  exact duplicates, a malformed packet line; some readings are estimates (quality E). Plus
  ``corrupt_export.xlsx``, a file that is no workbook (it must fail alone, into failed/).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
BRISBANE = ZoneInfo("Australia/Brisbane")
METER_NUMBERS = range(89134, 89155)  # SMR89134 … SMR89154: 21 meters per source
FAULT_SHARE = 0.002
SOLAR_METERS = ("SMR89136A", "SMR89141A", "SMR89139B", "SMR89147B", "SMR89144C")  # B1 export
HOT_WATER_METER = "SMR89150A"  # a second import channel, E2 (controlled load, at night)
REACTIVE_METER = "SMR89153B"  # a non-energy channel, Q1 (kVArh)


@dataclass
class FileNote:
    """What one sample file holds, for manifest.json."""

    path: str
    feed: str
    layout: str
    rows: int
    meters: int
    first_day: str
    last_day: str
    rejects: dict[str, int] = field(default_factory=dict)  # reason code -> rows, on purpose
    channels: dict[str, int] = field(default_factory=dict)  # channel -> meters with it
    duplicates: int = 0  # exact duplicate rows (dropped and counted, not rejected)
    estimated: int = 0  # readings with quality E (kept)
    unreadable: bool = False  # the whole file must fail


def meter_ids(source: str) -> list[str]:
    return [f"SMR{n}{source}" for n in METER_NUMBERS]


def _slots(first: date, last: date):
    """UTC starts of every half hour of the local days first..last, and their local times."""
    import pandas as pd

    start = pd.Timestamp(first, tz=LONDON)
    end = pd.Timestamp(last + timedelta(days=1), tz=LONDON)
    utc = pd.date_range(start.tz_convert(UTC), end.tz_convert(UTC), freq="30min", inclusive="left")
    return utc, utc.tz_convert(LONDON)


def _profile(local, n_meters: int, rng):
    """kWh per half hour, shape (slots, meters): base load, morning bump, evening peak."""
    import numpy as np

    hour = np.asarray(local.hour + local.minute / 60.0)
    weekend = np.asarray(local.day_of_week >= 5)
    shape = (
        0.12
        + 0.18 * np.exp(-(((hour - 7.75) / 1.2) ** 2))
        + 0.55 * ((hour >= 16) & (hour < 19))
        + 0.20 * np.exp(-(((hour - 20) / 1.5) ** 2))
        + 0.10 * (weekend & (hour >= 10) & (hour < 16))
    )
    scale = rng.uniform(0.6, 1.6, n_meters)  # houses differ in size
    noise = rng.gamma(8.0, 1 / 8.0, (len(hour), n_meters))
    return np.round(shape[:, None] * scale[None, :] * noise, 3)


def _pick(rng, n: int, k: int, taken: set[int]) -> list[int]:
    """k distinct row indexes in [0, n) not yet taken."""
    out: list[int] = []
    while len(out) < k:
        i = int(rng.integers(0, n))
        if i not in taken:
            taken.add(i)
            out.append(i)
    return out


def _write_long_xlsx(path: Path, rows: list[list], per_sheet: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for part in range(0, len(rows), per_sheet):
        sheet = book.create_sheet(f"week {part // per_sheet + 1}")
        sheet.append(["Meter_ID", "Timestamp", "Reading_kWh", "Quality"])
        for row in rows[part : part + per_sheet]:
            sheet.append(row)
    book.save(path)


def _long_a(out: Path, first: date, last: date, rng, now: datetime) -> FileNote:
    """Source A: long layout, one sheet per week, with every kind of row-level fault."""
    _, local = _slots(first, last)
    meters = meter_ids("A")
    kwh = _profile(local, len(meters), rng)
    naive = local.tz_localize(None).to_pydatetime()
    rows: list[list] = []
    for i, stamp in enumerate(naive):
        for j, meter in enumerate(meters):
            rows.append([meter, stamp, float(kwh[i, j]), "A"])
    n = len(rows)
    k = max(1, int(n * FAULT_SHARE / 8))
    taken: set[int] = set()
    faults: dict[str, int] = {}

    def fault(name: str, change) -> None:
        for i in _pick(rng, n, k, taken):
            change(rows[i])
        faults[name] = k

    fault("missing_reading", lambda r: r.__setitem__(2, None))
    fault("non_numeric_reading", lambda r: r.__setitem__(2, "n/a"))
    fault("negative_reading", lambda r: r.__setitem__(2, -abs(r[2]) - 0.1))
    fault("implausible_reading", lambda r: r.__setitem__(2, 999.0))
    fault("malformed_meter_id", lambda r: r.__setitem__(0, r[0][:-2] + r[0][-1]))
    fault("misaligned_timestamp", lambda r: r.__setitem__(1, r[1] + timedelta(minutes=17)))
    for i in _pick(rng, n, k, taken):
        rows[i][3] = "E"
    dups = [list(rows[i]) for i in _pick(rng, n, k, taken)]
    future = [[meters[0], (now + timedelta(days=2)).replace(tzinfo=None, microsecond=0), 0.4, "A"]]
    future[0][1] = future[0][1].replace(minute=0, second=0)
    faults["future_timestamp"] = 1
    rows = rows + dups + future
    path = out / "spreadsheets" / f"readings_A_{first:%Y%m%d}_{last:%Y%m%d}.xlsx"
    _write_long_xlsx(path, rows, per_sheet=7 * 48 * len(meters))
    return FileNote(
        str(path.relative_to(out)), "spreadsheets", "long", len(rows), len(meters),
        str(first), str(last), faults, {"E1": len(meters)}, duplicates=k, estimated=k,
    )  # fmt: skip


def _wide(first: date, last: date, source: str, rng):
    _, local = _slots(first, last)
    meters = meter_ids(source)
    return meters, local.tz_localize(None).to_pydatetime(), _profile(local, len(meters), rng)


def _wide_faults(values: list[list], rng) -> dict[str, int]:
    """Blank and non-numeric cells in a wide grid (rows × meters), in place."""
    n, m = len(values), len(values[0])
    k = max(1, int(n * m * FAULT_SHARE / 2))
    for _ in range(k):
        values[int(rng.integers(0, n))][int(rng.integers(0, m))] = None
    for _ in range(k):
        values[int(rng.integers(0, n))][int(rng.integers(0, m))] = "ERR"
    return {"missing_reading": k, "non_numeric_reading": k}


def _wide_b(out: Path, first: date, last: date, rng) -> FileNote:
    """Source B: wide CSV, dd/mm/yyyy local times, one column per meter."""
    meters, stamps, kwh = _wide(first, last, "B", rng)
    values = kwh.tolist()
    faults = _wide_faults(values, rng)
    path = out / "spreadsheets" / f"readings_B_{first:%Y%m%d}_{last:%Y%m%d}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Timestamp", *meters])
        for stamp, row in zip(stamps, values, strict=True):
            writer.writerow(
                [stamp.strftime("%d/%m/%Y %H:%M"), *["" if v is None else v for v in row]]
            )
    return FileNote(
        str(path.relative_to(out)), "spreadsheets", "wide", len(stamps) * len(meters),
        len(meters), str(first), str(last), faults, {"E1": len(meters)},
    )  # fmt: skip


def _wide_c(out: Path, first: date, last: date, rng) -> FileNote:
    """Source C: wide workbook with Excel date cells, a title row above the header."""
    from openpyxl import Workbook

    meters, stamps, kwh = _wide(first, last, "C", rng)
    values = kwh.tolist()
    faults = _wide_faults(values, rng)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Half-hourly kWh")
    sheet.append([f"Source C meters, half-hourly kWh, {first} to {last} (Europe/London)"])
    sheet.append(["Timestamp", *meters])
    for stamp, row in zip(stamps, values, strict=True):
        sheet.append([stamp, *row])
    path = out / "spreadsheets" / f"readings_C_{first:%Y%m%d}_{last:%Y%m%d}.xlsx"
    book.save(path)
    return FileNote(
        str(path.relative_to(out)), "spreadsheets", "wide", len(stamps) * len(meters),
        len(meters), str(first), str(last), faults, {"E1": len(meters)},
    )  # fmt: skip


def _nem12_c(out: Path, first: date, last: date, rng) -> FileNote:
    """Source C, last days: NEM12 with 5-minute intervals in AEST, interval-ending, zipped."""
    import numpy as np

    meters = meter_ids("C")
    lines = [f"100,NEM12,{datetime.now(UTC):%Y%m%d%H%M},MDA1,RETAILER1"]
    day = first
    estimated = 0
    while day <= last:
        aest = [
            datetime(day.year, day.month, day.day, tzinfo=BRISBANE) + timedelta(minutes=30 * i)
            for i in range(48)
        ]
        import pandas as pd

        local = pd.DatetimeIndex(aest).tz_convert(LONDON)
        half = _profile(local, len(meters), rng)
        for j, meter in enumerate(meters):
            fives = np.repeat(half[:, j] / 6.0, 6).round(4)
            lines.append(f"200,{meter},E1,E1,E1,N1,{meter[3:8]},kWh,5,")
            flag = "A"
            if rng.random() < 0.1:
                flag = "V"
                estimated += 1
            values = ",".join(f"{v:.4f}" for v in fives)
            lines.append(f"300,{day:%Y%m%d},{values},{flag},,,{day:%Y%m%d}235959,")
            if flag == "V":
                lines.append("400,1,144,A,,")
                lines.append("400,145,288,E52,,")
        day += timedelta(days=1)
    lines.append("900")
    path = out / "nem12" / f"nem12_C_{first:%Y%m%d}_{last:%Y%m%d}.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.with_suffix(".csv").name, "\n".join(lines) + "\n")
    path.write_bytes(buffer.getvalue())
    days = (last - first).days + 1
    return FileNote(
        str(path.relative_to(out)), "nem12", "nem12", days * 48 * len(meters), len(meters),
        str(first), str(last), channels={"E1": len(meters)},
        estimated=estimated * 24,  # quality V days: second half estimated by a 400 record
    )  # fmt: skip


def _packets(out: Path, first: date, last: date, rng) -> FileNote:
    """Every meter's last days as stream packets, sent a minute after each interval ends."""
    utc, local = _slots(first, last)
    lines: list[str] = []
    for source in "ABC":
        meters = meter_ids(source)
        kwh = _profile(local, len(meters), rng)
        for i, start in enumerate(utc):
            sent = (start + timedelta(minutes=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for j, meter in enumerate(meters):
                packet = {"id": meter, "timestamp": sent, "reading_kWh": float(kwh[i, j])}
                lines.append(json.dumps(packet))
    lines.insert(len(lines) // 2, '{"id": "SMR89140A", "timestamp": ')  # a torn line
    path = out / "stream" / f"packets_{first:%Y%m%d}_{last:%Y%m%d}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return FileNote(
        str(path.relative_to(out)), "stream", "packets", len(lines), 63, str(first), str(last),
        {"malformed_record": 1}, {"E1": 63},
    )  # fmt: skip


def _solar_export(local, n_meters: int, rng):
    """kWh exported per half hour, shape (slots, meters): PV generation less the home's own
    daytime use, never negative; zero at night. Day length and midday height follow the season
    (London's latitude), each day has its cloud cover, each roof its size (2.5-6 kWp)."""
    import numpy as np

    hour = np.asarray(local.hour + local.minute / 60.0) + 0.25  # the half hour's middle
    season = np.sin(2 * np.pi * (np.asarray(local.day_of_year) - 80) / 365.25)  # +1 midsummer
    daylight = 12.0 + 4.3 * season  # hours: ~7.7 in December, ~16.3 in June
    sunrise = 12.2 - daylight / 2  # solar noon ~12:10 GMT; BST shifts it on the clock
    sunrise = sunrise + (np.asarray([t.utcoffset().total_seconds() for t in local]) / 3600)
    sun = np.clip(np.sin(np.pi * (hour - sunrise) / daylight), 0, None) ** 1.5
    days = np.asarray(local.normalize().tz_localize(None))
    _, day_index = np.unique(days, return_inverse=True)
    clouds = rng.uniform(0.15, 1.0, (day_index.max() + 1, n_meters))[day_index]
    kwp = rng.uniform(2.5, 6.0, n_meters)
    generated = 0.5 * kwp[None, :] * (0.6 + 0.3 * season)[:, None] * sun[:, None] * clouds
    return np.round(np.clip(generated - 0.12, 0, None), 3)  # 0.12 kWh: the home's own use


def _channels(out: Path, first: date, last: date, rng) -> FileNote:
    """The second channels of a few meters, wide, every day: solar export B1, a hot-water E2,
    a reactive Q1. One channel per meter in the file (a meter's E1 is in the readings files)."""
    import numpy as np

    _, local = _slots(first, last)
    export = _solar_export(local, len(SOLAR_METERS), rng)
    hour = np.asarray(local.hour + local.minute / 60.0)
    heater = ((hour >= 0.5) & (hour < 3.5)) * rng.uniform(1.1, 1.3, len(hour))  # 3.6 kW
    reactive = _profile(local, 1, rng)[:, 0] * 0.3
    columns = [f"{m} B1" for m in SOLAR_METERS] + [f"{HOT_WATER_METER} E2", f"{REACTIVE_METER} Q1"]
    values = np.column_stack([export, np.round(heater, 3), np.round(reactive, 3)])
    stamps = local.tz_localize(None).to_pydatetime()
    path = out / "spreadsheets" / f"channels_{first:%Y%m%d}_{last:%Y%m%d}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Timestamp", *columns])
        for stamp, row in zip(stamps, values.tolist(), strict=True):
            writer.writerow([stamp.strftime("%d/%m/%Y %H:%M"), *row])
    return FileNote(
        str(path.relative_to(out)), "spreadsheets", "wide", len(stamps) * len(columns),
        len(columns), str(first), str(last), {},
        {"B1": len(SOLAR_METERS), "E2": 1, "Q1": 1},
    )  # fmt: skip


def generate(out: Path, *, days: int = 42, seed: int = 7, now: datetime | None = None) -> dict:
    """Write the sample files under ``out`` and return the manifest (also in manifest.json)."""
    import numpy as np

    if days < 10:
        raise ValueError(f"--days must be at least 10 (got {days}): the files split the range")
    now = now or datetime.now(UTC)
    rng = np.random.default_rng(seed)
    last = now.astimezone(LONDON).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    for folder in ("spreadsheets", "nem12", "stream"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    notes = [
        _long_a(out, first, last - timedelta(days=2), rng, now),
        _wide_b(out, first, last - timedelta(days=2), rng),
        _wide_c(out, first, last - timedelta(days=9), rng),
        _nem12_c(out, last - timedelta(days=8), last - timedelta(days=1), rng),
        _packets(out, last - timedelta(days=1), last, rng),
        _channels(out, first, last, rng),
    ]
    corrupt = out / "spreadsheets" / "corrupt_export.xlsx"
    corrupt.write_bytes(b"PK\x03\x04 truncated during upload: this is not a workbook")
    notes.append(
        FileNote(str(corrupt.relative_to(out)), "spreadsheets", "none", 0, 0, "", "",
                 unreadable=True)
    )  # fmt: skip
    manifest = {
        "generated_at": now.isoformat(timespec="seconds"),
        "seed": seed,
        "first_day": str(first),
        "last_day": str(last),
        "timezone": "Europe/London",
        "files": [vars(n) for n in notes],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    from meterflow import config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="folder (default: landing)")
    parser.add_argument("--days", type=int, default=42, help="whole days ending yesterday")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    out = args.out or Path(config.get("landing_dir"))
    manifest = generate(out, days=args.days, seed=args.seed)
    print(f"sample data {manifest['first_day']} .. {manifest['last_day']} in {out}")
    for note in manifest["files"]:
        faults = ", ".join(f"{k} {v}" for k, v in note["rejects"].items())
        extra = f"; {note['duplicates']} duplicates" if note["duplicates"] else ""
        extra += f"; {note['estimated']} estimated" if note["estimated"] else ""
        channels = " ".join(f"{c}×{n}" for c, n in note["channels"].items() if c != "E1")
        extra += f"; channels {channels}" if channels else ""
        extra = "unreadable on purpose" if note["unreadable"] else (faults + extra).lstrip("; ")
        print(f"  {note['path']:<48} {note['rows']:>8,} rows  {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
