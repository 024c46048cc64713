"""Domain types: what a reading, a reject, a feed's verdict and a batch are.

Readers and cleansing work on pandas frames for speed (millions of rows), so a "reading" is a
frame with the columns named here rather than one object per row; the names and the reason
codes live in this one module so that every step speaks the same language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

SOURCES = ("A", "B", "C")
INTERVAL_MINUTES = 30
METER_ID_PATTERN = r"^SMR\d{5}[ABC]$"  # SMR89134A; the suffix letter is the source
DEFAULT_CHANNEL = "E1"  # import energy: the channel of a reading whose file names none
CHANNEL_PATTERN = r"^[A-Z0-9]{1,2}$"  # a NEM12 NMI suffix: E1, B1, Q1, 11 ...


class ChannelKind(StrEnum):
    """What a channel measures, by the NEM12 NMI-suffix convention (its first letter).

    Consumption figures sum IMPORT only; EXPORT (solar generation fed to the grid) is reported
    beside it; NON_ENERGY channels (reactive kVArh, apparent kVAh, volts) are stored, in their
    k-unit in the same value column, and never summed into kWh. Same rule as the SQL function
    meter.channel_kind (V015; a test holds them equal)."""

    IMPORT = "import"
    EXPORT = "export"
    NON_ENERGY = "non_energy"


def channel_kind(channel: str) -> ChannelKind:
    """E… import energy, B… export energy, anything else non-energy."""
    first = channel[:1]
    if first == "E":
        return ChannelKind.IMPORT
    if first == "B":
        return ChannelKind.EXPORT
    return ChannelKind.NON_ENERGY


class Quality(StrEnum):
    """Quality flag of a reading (NEM12 vocabulary). Rank: A best, then S/F, then E."""

    ACTUAL = "A"
    ESTIMATED = "E"
    SUBSTITUTED = "S"
    FINAL_SUBSTITUTED = "F"

    @property
    def rank(self) -> int:
        return {"A": 3, "S": 2, "F": 2, "E": 1}[self.value]


class Reason(StrEnum):
    """Why an input row was not staged. Stored in audit.rejected_row.reason."""

    MISSING_METER_ID = "missing_meter_id"
    MALFORMED_METER_ID = "malformed_meter_id"
    UNKNOWN_SOURCE = "unknown_source"
    MISSING_TIMESTAMP = "missing_timestamp"
    UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"  # e.g. 01:30 on a spring-forward day
    FUTURE_TIMESTAMP = "future_timestamp"
    EARLY_TIMESTAMP = "early_timestamp"  # before the earliest plausible date (MF_EARLIEST_DATE)
    MISALIGNED_TIMESTAMP = "misaligned_timestamp"  # not on the feed's interval grid
    MISSING_READING = "missing_reading"
    NON_NUMERIC_READING = "non_numeric_reading"
    NEGATIVE_READING = "negative_reading"
    IMPLAUSIBLE_READING = "implausible_reading"  # above the meter's/feed's/global max_kwh
    INVALID_QUALITY = "invalid_quality"  # a quality flag outside A/E/S/F (e.g. NEM12 'N')
    CONFLICTING_DUPLICATE = "conflicting_duplicate"  # same meter+channel+interval, other values
    MALFORMED_CHANNEL = "malformed_channel"  # a channel that is no NEM12-style suffix
    MALFORMED_RECORD = "malformed_record"  # a packet line that is no JSON object
    # a day-month date whose order is in doubt: 03/04/2025 in a file that also has dates only
    # the other order can read (01/15/2025 in a day-first feed)
    AMBIGUOUS_TIMESTAMP = "ambiguous_timestamp"
    # a day-month date only the other order can read (01/15/2025 in a day-first feed)
    MIXED_TIMESTAMP_FORMATS = "mixed_timestamp_formats"
    # a repeated local time (clocks going back) whose summer/winter reading the order of the
    # meter's readings in time cannot tell
    AMBIGUOUS_LOCAL_TIME = "ambiguous_local_time"


class BatchStatus(StrEnum):
    LOADING = "loading"
    STAGED = "staged"
    VALIDATED = "validated"
    REJECTED = "rejected"
    PROMOTED = "promoted"
    FAILED = "failed"


# Columns of a cleansed frame (one row per canonical 30-minute reading of one channel), in COPY
# order of staging.reading after batch_id.
CLEAN_COLUMNS = ["row_no", "meter_id", "channel", "source", "interval_start", "kwh", "quality"]
# Columns of a rejects frame, in COPY order of audit.rejected_row after batch_id.
REJECT_COLUMNS = ["row_no", "location", "meter_id", "reason", "detail", "raw"]


@dataclass
class LoadResult:
    """What loading one file did; logged and stored on audit.load_batch."""

    file: str
    feed: str
    batch_id: int | None = None
    status: str = BatchStatus.LOADING
    rows_read: int = 0
    rows_staged: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    skipped_reason: str | None = None  # e.g. "already loaded as batch 12"
    error: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_staged + self.rows_rejected + self.rows_duplicate

    def summary(self) -> str:
        if self.skipped_reason:
            return f"{self.file}: skipped ({self.skipped_reason})"
        return (
            f"{self.file}: read {self.rows_read:,} rows, staged {self.rows_staged:,}, "
            f"rejected {self.rows_rejected:,}, duplicates {self.rows_duplicate:,}"
            + (f" (batch {self.batch_id})" if self.batch_id else "")
        )


# Batch id of the estimates meterflow's VEE writes (meterflow.vee): no audit.load_batch row has
# it (batch ids start at 1). A reading with quality E and this batch is meterflow's own
# estimate, recomputed by each VEE run; any other reading is left alone.
VEE_BATCH_ID = 0
