"""Report charts (matplotlib, Agg backend): one style, titled, axes labelled with units.

Each ``*_chart`` function takes the rows of the matching include/sql/aggregate/report_*.sql
query and returns a matplotlib Figure (tests inspect its lines, bars and axis ranges);
:func:`save` writes it as PNG atomically and closes it. matplotlib is imported inside the
functions, so importing this module is cheap and DAG files stay light.

Consumption is import energy (channels E1, E2, ...: meterflow.models.ChannelKind). Export
(B1, ...: solar fed to the grid) is drawn beside it wherever the data has any, as its own series
(dashed in line charts, below the zero line in bar charts); non-energy channels (Q1, ...) are
never drawn as kWh.

- peak_means_chart: daily peak-mean time series per source (import), off-peak dashed
- load_profile_chart: average daily load profile (48 local half hours) per source, import
  solid and export dashed, the tariff's weekday peak window shaded
- heatmap_chart: meters × days, import kWh per day
- regions_chart: kWh by region over the period, stacked by source: import above zero, export
  below it
- consumption_chart: one meter's readings over a period (meter_consumption_report): import
  above zero, export below it
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from meterflow.models import ChannelKind

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from meterflow.aggregation import MeterReading
    from meterflow.tariffs import Tariff

SOURCE_COLOURS = {"A": "#1f77b4", "B": "#ff7f0e", "C": "#2ca02c"}
PEAK_SHADE = "#d62728"
EXPORT_HATCH = "////"  # export bars: the source's colour, hatched, below the zero line
DPI = 110


def backend() -> None:
    """Agg (no display; safe in workers), and text drawn as it is: region names, file names
    and error texts come from input, and a "$…$" in one must not be parsed as mathtext (an
    unknown command in it stopped the whole chart or PDF)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams["text.parse_math"] = False


def _figure(width: float = 10.0, height: float = 5.0) -> Figure:
    """A new figure on the Agg backend, text taken literally (:func:`backend`)."""
    backend()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    fig.add_subplot(1, 1, 1)
    return fig


def _style(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=12, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _no_data(ax, text: str = "no readings in this period") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")


def _span(start: date, end: date) -> str:
    return f"{start}" if start == end else f"{start} to {end}"


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def slot_label(slot: int) -> str:
    return f"{slot // 2:02d}:{(slot % 2) * 30:02d}"


def peak_means_chart(
    rows: Sequence[tuple], tariff: Tariff, start: date, end: date, zone: str
) -> Figure:
    """rows: (source, local_date, peak_mean, offpeak_mean, total_kwh, meters), by source, day.

    One solid line per source for the peak-band mean and a dashed one for off-peak; days
    without a peak interval (weekends under a weekday peak) are gaps, not zeros.
    """
    import matplotlib.dates as mdates

    fig = _figure()
    ax = fig.axes[0]
    series: dict[str, list[tuple]] = defaultdict(list)
    for source, day, peak, offpeak, *_ in rows:
        series[source].append((day, _nan(peak), _nan(offpeak)))
    for source, points in sorted(series.items()):
        days = [p[0] for p in points]
        colour = SOURCE_COLOURS.get(source, "black")
        ax.plot(
            days,
            [p[1] for p in points],
            color=colour,
            marker="o",
            markersize=3,
            label=f"{source} {tariff.peak_label}",
        )
        ax.plot(
            days,
            [p[2] for p in points],
            color=colour,
            linestyle="--",
            alpha=0.8,
            label=f"{source} {tariff.off_peak_label}",
        )
    if series:
        ax.legend(ncols=min(3, len(series)), fontsize=8)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
        ax.set_ylim(bottom=0)
    else:
        _no_data(ax)
    _style(
        ax,
        f"Mean kWh per half hour, {tariff.peak_label} vs {tariff.off_peak_label} "
        f"(tariff {tariff.name}), {_span(start, end)}",
        f"local date ({zone})",
        "mean import kWh per half hour",
    )
    return fig


def load_profile_chart(
    rows: Sequence[tuple], tariff: Tariff, start: date, end: date, zone: str
) -> Figure:
    """rows: (source, slot 0-47, mean import kWh per reading, import readings, mean export kWh
    per reading or None, export readings). Import solid; export dashed, for the sources that
    have export readings. Peak band shaded."""
    fig = _figure()
    ax = fig.axes[0]
    series: dict[str, dict[int, float]] = defaultdict(dict)
    exported: dict[str, dict[int, float]] = defaultdict(dict)
    for source, slot, mean, _readings, export_mean, export_readings in rows:
        series[source][int(slot)] = _nan(mean)
        if export_readings:
            exported[source][int(slot)] = _nan(export_mean)
    slots = list(range(48))
    for source, values in sorted(series.items()):
        ax.plot(
            slots,
            [values.get(s, math.nan) for s in slots],
            color=SOURCE_COLOURS.get(source, "black"),
            marker=".",
            label=f"source {source} import" if exported else f"source {source}",
        )
    for source, values in sorted(exported.items()):
        ax.plot(
            slots,
            [values.get(s, math.nan) for s in slots],
            color=SOURCE_COLOURS.get(source, "black"),
            linestyle="--",
            label=f"source {source} export",
        )
    # Shade the half hours in the tariff's peak band on a weekday (Monday's windows).
    peak = tariff.peak_slots(0)
    first = True
    for run_start, run_end in _runs(peak):
        ax.axvspan(
            run_start - 0.5,
            run_end + 0.5,
            color=PEAK_SHADE,
            alpha=0.12,
            label=f"{tariff.peak_label} (weekdays)" if first else None,
        )
        first = False
    ax.set_xlim(-0.5, 47.5)
    ax.set_xticks(range(0, 48, 4), [slot_label(s) for s in range(0, 48, 4)])
    if series:
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    else:
        _no_data(ax)
    _style(
        ax,
        f"Average daily load profile per meter, {_span(start, end)} (tariff {tariff.name})",
        f"local time of day ({zone}), start of the half hour",
        "mean kWh per half hour and reading",
    )
    return fig


def _runs(slots: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs of slot numbers: [32, 33, 34] → [(32, 34)]."""
    runs: list[tuple[int, int]] = []
    for s in sorted(slots):
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


def heatmap_chart(rows: Sequence[tuple], start: date, end: date) -> Figure:
    """rows: (meter_id, local_date, import kWh). One row per meter, one column per day."""
    import numpy as np

    meters = sorted({r[0] for r in rows})
    days = [date.fromordinal(o) for o in range(start.toordinal(), end.toordinal() + 1)]
    col = {d: i for i, d in enumerate(days)}
    grid = np.full((max(len(meters), 1), len(days)), np.nan)
    row_of = {m: i for i, m in enumerate(meters)}
    for meter, day, kwh in rows:
        if day in col:
            grid[row_of[meter], col[day]] = kwh
    fig = _figure(
        width=max(8.0, min(20.0, 3 + 0.25 * len(days))),
        height=max(4.0, min(20.0, 1.5 + 0.25 * len(meters))),
    )
    ax = fig.axes[0]
    image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="import kWh per day")
    ax.set_yticks(range(len(meters)), meters, fontsize=7)
    step = max(1, len(days) // 12)
    ax.set_xticks(
        range(0, len(days), step),
        [days[i].isoformat() for i in range(0, len(days), step)],
        rotation=45,
        ha="right",
        fontsize=7,
    )
    if not meters:
        _no_data(ax)
    _style(ax, f"Import kWh per meter and local day, {_span(start, end)}", "local date", "meter")
    ax.grid(False)
    return fig


def regions_chart(rows: Sequence[tuple], start: date, end: date) -> Figure:
    """rows: (region, source, import kWh, export kWh or None). One bar per region, stacked by
    source: import above zero; export, where a source of the region has any, below it."""
    import numpy as np

    fig = _figure()
    ax = fig.axes[0]
    regions = sorted({r[0] for r in rows})
    by = {(r[0], r[1]): float(r[2]) for r in rows}
    export = {(r[0], r[1]): float(r[3]) for r in rows if r[3] is not None}
    bottom = np.zeros(len(regions))
    below = np.zeros(len(regions))
    for source in sorted({r[1] for r in rows}):
        colour = SOURCE_COLOURS.get(source, "grey")
        values = np.array([by.get((region, source), 0.0) for region in regions])
        label = f"source {source} import" if export else f"source {source}"
        ax.bar(regions, values, bottom=bottom, color=colour, label=label)
        bottom += values
        if any((region, source) in export for region in regions):
            out = -np.array([export.get((region, source), 0.0) for region in regions])
            ax.bar(
                regions,
                out,
                bottom=below,
                color=colour,
                alpha=0.55,
                hatch=EXPORT_HATCH,
                label=f"source {source} export",
            )
            below += out
    if export:
        ax.axhline(0, color="black", linewidth=0.8)
    if regions:
        ax.legend(fontsize=8)
    else:
        _no_data(ax)
    _style(
        ax,
        f"Consumption by region, {_span(start, end)}" + (" (export below zero)" if export else ""),
        "region",
        "kWh",
    )
    return fig


def consumption_chart(
    rows: Sequence[MeterReading],
    meter_id: str,
    period_label: str,
    zone: ZoneInfo,
    *,
    daily: bool,
) -> Figure:
    """One meter's kWh per half hour (``daily`` False) or per local day (True): its import
    channels summed (E1 + E2) above zero and, where it has any, its export below zero;
    non-energy channels are not drawn."""
    import matplotlib.dates as mdates

    fig = _figure()
    ax = fig.axes[0]
    colour = SOURCE_COLOURS.get(meter_id[-1:], "grey")
    imported: dict[date | datetime, float] = defaultdict(float)
    exported: dict[date | datetime, float] = defaultdict(float)
    for r in rows:
        # per local day, or per half hour by its UTC start (the two October 01:00 local half
        # hours are two bars; aware datetimes of one zone compare by wall clock alone)
        key = r.interval_start.astimezone(zone).date() if daily else r.interval_start
        if r.kind == ChannelKind.IMPORT:
            imported[key] += r.kwh
        elif r.kind == ChannelKind.EXPORT:
            exported[key] += r.kwh
    if daily:
        width: float = 0.8
        xlabel, ylabel = f"local date ({zone.key})", "kWh per day"
        align = "center"
    else:
        width = 1 / 48 * 0.9
        xlabel, ylabel = f"local time ({zone.key}), start of the half hour", "kWh per half hour"
        align = "edge"

    def xs(keys):
        return [k if daily else k.astimezone(zone).replace(tzinfo=None) for k in keys]

    keys = sorted(imported)
    ax.bar(
        xs(keys),
        [imported[k] for k in keys],
        width=width,
        align=align,
        color=colour,
        label="import",
    )
    if exported:
        keys = sorted(exported)
        ax.bar(
            xs(keys),
            [-exported[k] for k in keys],
            width=width,
            align=align,
            color=colour,
            alpha=0.55,
            hatch=EXPORT_HATCH,
            label="export (below zero)",
        )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.legend(fontsize=8)
    if imported or exported:
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    else:
        _no_data(ax)
    _style(ax, f"Consumption of {meter_id}, {period_label}", xlabel, ylabel)
    return fig


def save(fig: Figure, path: Path | str) -> Path:
    """Write the figure as PNG (atomically: a reader never sees half a file) and release it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=DPI)
    os.replace(tmp, path)
    return path
