"""The quality gate against the real PostgreSQL (and S3, SMTP): meterflow.quality validates a
staged batch with GX in the database, records audit.quality_result, sets the batch's status,
writes Data Docs and alerts on a rejected batch. One batch per defect class fails exactly the
expectation meant for it."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
CLEAN_DAY = date(2025, 1, 15)


def day_slots(day: date, tz: ZoneInfo = LONDON) -> list[datetime]:
    """UTC starts of every 30-minute interval of a local day (46, 48 or 50 of them)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).astimezone(UTC)
    return [
        start + timedelta(minutes=30 * i) for i in range(int((end - start) / timedelta(minutes=30)))
    ]


def day_rows(meter: str, day: date = CLEAN_DAY, quality: str = "A") -> list[tuple]:
    return [
        (meter, meter[-1], t, 0.25 + (i % 7) / 10, quality) for i, t in enumerate(day_slots(day))
    ]


def stage(db, rows: list[tuple], file_name: str = "readings.csv") -> int:
    """An audit.load_batch row with status 'staged' (accounting balanced) and its rows:
    (meter, source, start, kWh, quality[, channel]); without a channel, E1."""
    n = len(rows)
    sha = hashlib.sha256(f"{file_name}{datetime.now().isoformat()}".encode()).hexdigest()
    (batch_id,) = db.execute(
        "INSERT INTO audit.load_batch (feed, file_name, file_path, sha256, size_bytes, status,"
        " rows_read, rows_staged) VALUES ('spreadsheets', %s, %s, %s, 100, 'staged', %s, %s)"
        " RETURNING batch_id",
        (file_name, f"/landing/spreadsheets/{file_name}", sha, n, n),
    ).fetchone()
    with db.cursor().copy(
        "COPY staging.reading (batch_id, row_no, meter_id, channel, source, interval_start, kwh,"
        " quality, ingested_at) FROM STDIN"
    ) as copy:
        for no, (meter, source, start, kwh, quality, *channel) in enumerate(rows, start=2):
            channel = channel[0] if channel else "E1"
            copy.write_row(
                (batch_id, no, meter, channel, source, start, kwh, quality, datetime.now(UTC))
            )
    return batch_id


@pytest.fixture
def gx_home(tmp_path, monkeypatch):
    """GX file context and Data Docs of this test under tmp_path (not the demo's var/)."""
    monkeypatch.setenv("MF_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("MF_DATA_DOCS_DIR", str(tmp_path / "var" / "data_docs"))
    return tmp_path / "var"


def status(db, batch_id: int) -> str:
    return db.execute(
        "SELECT status FROM audit.load_batch WHERE batch_id = %s", (batch_id,)
    ).fetchone()[0]


def test_clean_batch_with_clock_change_days_is_validated_and_recorded(db, gx_home):
    from meterflow import quality

    rows = (
        day_rows("SMR89134A", date(2025, 3, 30))  # spring forward: 46 intervals
        + day_rows("SMR89135B", date(2025, 10, 26))  # fall back: 50 intervals
        + day_rows("SMR89136C")
    )
    batch_id = stage(db, rows)
    verdict = quality.validate_batch(batch_id, publish=False)

    assert verdict.verdict == "validated" and verdict.failures == []
    assert status(db, batch_id) == "validated"
    row = db.execute(
        "SELECT suite, success, verdict, expectations_evaluated, expectations_failed, failures,"
        " docs_path FROM audit.quality_result WHERE batch_id = %s",
        (batch_id,),
    ).fetchone()
    assert row[:6] == ("meter_reading", True, "validated", 10, 0, [])
    page = (gx_home / "data_docs" / row[6]).read_text()
    # each check reads as its sentence from the suite, with the bound it was checked against
    assert "one reading per meter, channel and interval" in page
    assert "else setting MF_MAX_KWH (25 kWh)" in page


def test_data_docs_pages_are_rendered_from_templates_compiled_once(db, gx_home):
    from meterflow import quality

    first = quality.validate_batch(stage(db, day_rows("SMR89134A")), publish=False)
    kept = {p.name: p.stat().st_mtime_ns for p in (gx_home / "gx" / "templates").iterdir()}
    second = quality.validate_batch(stage(db, day_rows("SMR89135B")), publish=False)

    # the page, index and suite templates were compiled by the first validation and kept
    assert len(kept) >= 10
    after = {p.name: p.stat().st_mtime_ns for p in (gx_home / "gx" / "templates").iterdir()}
    assert after == kept  # the second validation loaded them: nothing compiled or rewritten
    index = (gx_home / "data_docs" / "index.html").read_text()
    assert first.docs_path != second.docs_path
    for verdict in (first, second):
        page = (gx_home / "data_docs" / verdict.docs_path).read_text()
        assert "one reading per meter, channel and interval" in page
        assert verdict.docs_path in index and f"batch_{verdict.batch_id}-" in verdict.docs_path


def test_a_changed_bound_reaches_the_kept_suite_and_its_page(db, gx_home, monkeypatch):
    from meterflow import quality

    first = quality.validate_batch(stage(db, day_rows("SMR89134A")), publish=False)
    monkeypatch.setenv("MF_MAX_KWH", "50")
    second = quality.validate_batch(stage(db, day_rows("SMR89135B")), publish=False)

    docs = gx_home / "data_docs"
    assert "MF_MAX_KWH (25 kWh)" in (docs / first.docs_path).read_text()
    assert "MF_MAX_KWH (50 kWh)" in (docs / second.docs_path).read_text()


def test_the_gx_context_does_not_grow_with_the_batches_it_validates(db, gx_home):
    import yaml

    from meterflow import quality

    for meter in ("SMR89134A", "SMR89135B", "SMR89136C"):
        quality.validate_batch(stage(db, day_rows(meter)), publish=False)

    project = gx_home / "gx" / "gx"
    config = yaml.safe_load((project / "great_expectations.yml").read_text())
    (source,) = config["fluent_datasources"].values()
    # one asset, validation definition and checkpoint serve every batch
    assert list(source["assets"]) == [quality.CHECKPOINT]
    assert len(list((project / "checkpoints").glob("*.json"))) == 1
    assert len(list((project / "validation_definitions").glob("*.json"))) == 1
    # no config variables file for GX to re-read on every lookup, no progress bars in task logs
    assert config["config_variables_file_path"] is None
    assert not (project / "uncommitted" / "config_variables.yml").exists()
    assert config["progress_bars"]["globally"] is False


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        ("Australia/Adelaide", date(2025, 10, 5), date(2025, 4, 6)),  # +09:30 / +10:30
        ("America/New_York", date(2025, 3, 9), date(2025, 11, 2)),  # west of UTC
        ("Asia/Kathmandu", None, None),  # +05:45: not a whole half hour, AT TIME ZONE
    ],
)
def test_local_days_in_other_zones_are_complete_with_their_clock_changes(
    db, gx_home, monkeypatch, zone, spring, autumn
):
    from meterflow import quality

    monkeypatch.setenv("MF_LOCAL_TZ", zone)
    tz = ZoneInfo(zone)

    def grid_slots(day: date) -> list[datetime]:  # the UTC :00/:30 starts in the local day
        first = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
        first -= timedelta(minutes=first.minute % 30)
        slots = (first + timedelta(minutes=30 * i) for i in range(52))
        return [t for t in slots if t.astimezone(tz).date() == day]

    days = [d for d in (spring, autumn, date(2025, 7, 1)) if d]
    rows = [("SMR89134A", "A", t, 0.5, "A") for day in days for t in grid_slots(day)]
    verdict = quality.validate_batch(stage(db, rows), publish=False, alert=False)

    assert verdict.failures == []  # every local day has its 46, 48 or 50 intervals
    assert db.execute(
        "SELECT days, readings, incomplete_days FROM staging.batch_profile WHERE batch_id = %s",
        (verdict.batch_id,),
    ).fetchone() == (len(days), len(rows), 0)
    assert {len(grid_slots(d)) for d in days} == ({46, 48, 50} if spring else {48})

    short = stage(db, rows[1:], file_name="short.csv")  # the first local day lacks its first
    quality.validate_batch(short, publish=False, alert=False)
    first = len(grid_slots(days[0]))
    assert db.execute(
        "SELECT local_day, intervals, expected FROM staging.batch_day_gap WHERE batch_id = %s",
        (short,),
    ).fetchall() == [(days[0], first - 1, first)]


def _clean() -> list[tuple]:
    return day_rows("SMR89134A")


def _shift(rows: list[tuple], i: int, **change) -> list[tuple]:
    meter, source, start, kwh, quality = rows[i]
    new = dict(meter=meter, source=source, start=start, kwh=kwh, quality=quality) | change
    return [*rows[:i], tuple(new.values()), *rows[i + 1 :]]


def _future_day() -> list[tuple]:
    return day_rows("SMR89134A", datetime.now(LONDON).date() + timedelta(days=2))


DEFECTS = {
    # defect: (rows, the one check that fails, its severity, resulting status)
    "kwh_above_max": (lambda: _shift(_clean(), 5, kwh=99.0), "kwh_range", "critical", "rejected"),
    "negative_kwh": (lambda: _shift(_clean(), 5, kwh=-0.5), "kwh_range", "critical", "rejected"),
    "bad_meter_id": (
        lambda: [("SMR8913A", *r[1:]) for r in _clean()],
        "meter_id_pattern",
        "critical",
        "rejected",
    ),
    "misaligned_timestamp": (
        lambda: _shift(_clean(), 5, start=_clean()[5][2] + timedelta(minutes=15)),
        "interval_aligned",
        "critical",
        "rejected",
    ),
    "future_timestamp": (_future_day, "interval_not_future", "critical", "rejected"),
    "duplicate_key": (lambda: [*_clean(), _clean()[7]], "key_unique", "critical", "rejected"),
    "empty_batch": (lambda: [], "non_empty", "critical", "rejected"),
    "incomplete_day": (lambda: _clean()[:-1], "day_complete", "warning", "validated"),
    "many_estimated": (
        lambda: [r if i % 4 else (*r[:4], "E") for i, r in enumerate(_clean())],
        "estimated_share",
        "warning",
        "validated",
    ),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_batch_with_one_defect_fails_exactly_its_expectation(db, gx_home, defect):
    from meterflow import quality

    rows, check, severity, expected_status = DEFECTS[defect]
    batch_id = stage(db, rows(), file_name=f"{defect}.csv")
    verdict = quality.validate_batch(batch_id, publish=False, alert=False)

    assert [(f.check, f.severity) for f in verdict.failures] == [(check, severity)]
    assert verdict.verdict == expected_status == status(db, batch_id)
    (failures,) = db.execute(
        "SELECT failures FROM audit.quality_result WHERE batch_id = %s", (batch_id,)
    ).fetchone()
    assert [f["check"] for f in failures] == [check]
    if defect != "empty_batch":
        assert failures[0]["unexpected_count"] >= 1 and failures[0]["sample"]


def test_a_batch_is_judged_on_its_own_rows_while_a_bad_batch_is_staged_beside_it(db, gx_home):
    from meterflow import quality

    bad = stage(db, [*_clean(), _clean()[7]], file_name="duplicate.csv")
    clean = stage(db, day_rows("SMR89137A"), file_name="clean.csv")

    assert quality.validate_batch(clean, publish=False, alert=False).failures == []
    verdict = quality.validate_batch(bad, publish=False, alert=False)
    assert [f.check for f in verdict.failures] == ["key_unique"]
    assert verdict.failures[0].sample[0]["meter_id"] == "SMR89134A"
    assert status(db, clean) == "validated" and status(db, bad) == "rejected"


def test_the_profile_counts_each_rule_once_per_reading_and_failures_name_the_readings(db, gx_home):
    from meterflow import quality

    rows = day_rows("SMR89134A")
    rows = [*rows, rows[7], rows[9]]  # two duplicated keys
    rows = _shift(rows, 3, start=rows[3][2] + timedelta(minutes=10))  # one misaligned start
    rows = [r if i not in (1, 2, 5) else (*r[:4], "E") for i, r in enumerate(rows)]
    rows += day_rows("SMR89135B", date(2025, 3, 30))[:-2]  # spring day, two intervals short
    batch_id = stage(db, rows)

    verdict = quality.validate_batch(batch_id, publish=False, alert=False)

    profile = db.execute(
        "SELECT meter_id, days, readings, estimated, misaligned, duplicates, incomplete_days"
        " FROM staging.batch_profile WHERE batch_id = %s ORDER BY 1",
        (batch_id,),
    ).fetchall()
    assert profile == [("SMR89134A", 1, 50, 3, 1, 2, 0), ("SMR89135B", 1, 44, 0, 0, 0, 1)]
    gaps = db.execute(
        "SELECT meter_id, local_day, readings, intervals, expected FROM staging.batch_day_gap"
        " WHERE batch_id = %s",
        (batch_id,),
    ).fetchall()
    assert gaps == [("SMR89135B", date(2025, 3, 30), 44, 44, 46)]
    found = {f.check: f for f in verdict.failures}
    assert set(found) == {"interval_aligned", "key_unique", "day_complete"}
    assert found["key_unique"].unexpected_count == 2  # duplicated keys, not meter-days
    assert {(r["meter_id"], r["readings"]) for r in found["key_unique"].sample} == {
        ("SMR89134A", 2)
    }
    assert found["interval_aligned"].unexpected_count == 1
    assert found["interval_aligned"].sample[0]["interval_start"].endswith("01:40:00+00:00")
    assert found["day_complete"].sample == [
        {
            "meter_id": "SMR89135B",
            "channel": "E1",
            "local_day": "2025-03-30",
            "intervals": 44,
            "expected": 46,
        }
    ]
    assert verdict.verdict == "rejected"


def test_re_validating_a_batch_replaces_its_profile(db, gx_home, monkeypatch):
    from meterflow import quality

    rows = day_rows("SMR89134A")
    batch_id = stage(db, _shift(rows, 5, kwh=30.0))
    assert quality.validate_batch(batch_id, publish=False, alert=False).verdict == "rejected"

    monkeypatch.setenv("MF_MAX_KWH", "50")
    verdict = quality.validate_batch(batch_id, publish=False, alert=False)

    assert verdict.verdict == "validated" == status(db, batch_id)
    assert db.execute(
        "SELECT count(*), max(max_kwh) FROM staging.batch_profile WHERE batch_id = %s",
        (batch_id,),
    ).fetchone() == (1, 30)


def test_a_day_before_the_ten_year_grid_still_gets_its_local_day_and_clock_change(db, gx_home):
    from meterflow import quality

    old_spring = date(2012, 3, 25)  # UK clock change, outside quality.day_grid: AT TIME ZONE
    batch_id = stage(db, day_rows("SMR89134A", old_spring) + day_rows("SMR89135B"))

    verdict = quality.validate_batch(batch_id, publish=False, alert=False)

    assert verdict.failures == []  # 46 intervals on that day are all it has
    assert db.execute(
        "SELECT meter_id, days, readings, incomplete_days FROM staging.batch_profile"
        " WHERE batch_id = %s ORDER BY 1",
        (batch_id,),
    ).fetchall() == [("SMR89134A", 1, 46, 0), ("SMR89135B", 1, 48, 0)]
    short = stage(db, day_rows("SMR89134A", old_spring)[:-1], file_name="short.csv")
    quality.validate_batch(short, publish=False, alert=False)
    assert db.execute(
        "SELECT meter_id, local_day, intervals, expected FROM staging.batch_day_gap"
        " WHERE batch_id = %s",
        (short,),
    ).fetchall() == [("SMR89134A", old_spring, 45, 46)]


def test_a_per_batch_checkpoint_left_by_an_earlier_version_is_removed(db, gx_home):
    """Before session 7 every batch had its own asset, validation definition and checkpoint,
    deleted after the run; a killed run left them in the GX home."""
    import great_expectations as gx

    from meterflow import quality

    batch_id = stage(db, day_rows("SMR89134A"))
    with quality._locked(quality.gx_root()):
        ctx = quality.context(batch_id=batch_id)
        ctx.suites.add_or_update(quality.load_suite())
        asset = ctx.data_sources.get(quality.DATASOURCE).add_table_asset(
            name="batch_99", table_name=quality.PROFILE_VIEW, schema_name="staging"
        )
        definition = ctx.validation_definitions.add(
            gx.ValidationDefinition(
                name="batch_99",
                data=asset.add_batch_definition_whole_table("batch_99"),
                suite=ctx.suites.get(quality.SUITE),
            )
        )
        ctx.checkpoints.add(gx.Checkpoint(name="batch_99", validation_definitions=[definition]))

    verdict = quality.validate_batch(batch_id, publish=False)

    assert verdict.verdict == "validated"
    project = gx_home / "gx" / "gx"
    assert [p.stem for p in (project / "checkpoints").glob("*.json")] == [quality.CHECKPOINT]
    assert [p.stem for p in (project / "validation_definitions").glob("*.json")] == [
        quality.CHECKPOINT
    ]
    assert "batch_99" not in (project / "great_expectations.yml").read_text()


def test_every_interval_of_two_months_across_2000_is_counted_once(db, gx_home):
    """The profile tells intervals apart by six bits of the timestamp's binary form: 64 local
    days (1999-12-01 ... 2000-02-02) put every day's first interval on each of those bit
    positions once, before and after the zero point 2000-01-01 00:00 UTC."""
    from meterflow import quality

    days = [date(1999, 12, 1) + timedelta(days=i) for i in range(64)]
    rows = [r for d in days for r in day_rows("SMR89134A", d)]
    clean = stage(db, rows)
    assert quality.validate_batch(clean, publish=False, alert=False).failures == []
    profile = "SELECT days, readings, duplicates, incomplete_days FROM staging.batch_profile"
    profile += " WHERE batch_id = %s"
    assert db.execute(profile, (clean,)).fetchone() == (64, 64 * 48, 0, 0)

    # one interval read twice on 2000-01-01 and one missing on 1999-12-31: both seen, not offset
    twice = day_rows("SMR89134A", date(2000, 1, 1))[7]
    missing = day_rows("SMR89134A", date(1999, 12, 31))[40]
    bad = stage(db, [r for r in rows if r != missing] + [twice], file_name="bad.csv")
    verdict = quality.validate_batch(bad, publish=False, alert=False)
    assert {f.check for f in verdict.failures} == {"key_unique", "day_complete"}
    assert db.execute(profile, (bad,)).fetchone() == (64, 64 * 48, 1, 1)
    assert db.execute(
        "SELECT local_day, readings, intervals, expected FROM staging.batch_day_gap"
        " WHERE batch_id = %s",
        (bad,),
    ).fetchall() == [(date(1999, 12, 31), 47, 47, 48)]


def test_the_index_reads_each_stored_result_once_and_links_every_page(db, gx_home, monkeypatch):
    """GX's own index builder loaded every stored result on every validation (1 + 2 + 3 reads
    for three batches); meterflow.gx_docs.SiteIndexBuilder keeps what the index shows of each."""
    from great_expectations.data_context.data_context.abstract_data_context import (
        AbstractDataContext,
    )

    from meterflow import quality

    reads = []
    real = AbstractDataContext.get_validation_result

    def counted(self, *args, **kwargs):
        reads.append(kwargs.get("run_id"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AbstractDataContext, "get_validation_result", counted)
    meters = ("SMR89134A", "SMR89135B", "SMR89136C")
    clean = [quality.validate_batch(stage(db, day_rows(m)), publish=False) for m in meters]
    too_much = _shift(day_rows("SMR89137A"), 5, kwh=99.0)
    bad = quality.validate_batch(stage(db, too_much), publish=False, alert=False)

    assert len(reads) == 4
    index = (gx_home / "data_docs" / "index.html").read_text()

    def row(verdict):  # the index's table row of one validation, up to its run name
        at = index.index(verdict.run_name)
        return index[index.rindex("validation_success", 0, at) : at]

    for verdict in clean:
        assert verdict.docs_path in index and "ge-success-icon" in row(verdict)
    assert bad.verdict == "rejected"
    assert bad.docs_path in index and "ge-failed-icon" in row(bad)


# --- channels (issue 17) --------------------------------------------------------------------


def channel_rows(meter: str, channel: str, values: float = 0.25, day: date = CLEAN_DAY):
    """One complete local day of one channel of a meter, all readings ``values``; the source
    is an SMR id's suffix letter, C for an NMI (as a feed with a fixed source sets it)."""
    source = meter[-1] if meter.startswith("SMR") else "C"
    return [(meter, source, t, values, "A", channel) for t in day_slots(day)]


def profile_rows(db, batch_id: int) -> list[tuple]:
    return db.execute(
        "SELECT meter_id, channel, readings, duplicates, incomplete_days, limit_kwh"
        " FROM staging.batch_profile WHERE batch_id = %s ORDER BY meter_id, channel",
        (batch_id,),
    ).fetchall()


def test_import_export_and_reactive_channels_of_one_meter_on_the_same_intervals_pass(db, gx_home):
    from meterflow import quality

    rows = [  # a rooftop-solar meter: E1 and B1 often equal, Q1 in kVArh
        *channel_rows("SMR89134A", "E1", 0.5),
        *channel_rows("SMR89134A", "B1", 0.5),
        *channel_rows("SMR89134A", "Q1", 1.75),
    ]
    batch_id = stage(db, rows, file_name="solar.csv")

    verdict = quality.validate_batch(batch_id, publish=False, alert=False)

    assert verdict.failures == [] and verdict.verdict == "validated" == status(db, batch_id)
    assert profile_rows(db, batch_id) == [
        ("SMR89134A", "B1", 48, 0, 0, 25),
        ("SMR89134A", "E1", 48, 0, 0, 25),
        ("SMR89134A", "Q1", 48, 0, 0, None),  # non-energy: no kWh limit
    ]


def test_a_duplicate_within_one_channel_is_rejected_and_named_with_its_channel(db, gx_home):
    from meterflow import quality

    e1, b1 = channel_rows("SMR89134A", "E1"), channel_rows("SMR89134A", "B1")
    batch_id = stage(db, [*e1, *b1, b1[7]], file_name="dup.csv")

    verdict = quality.validate_batch(batch_id, publish=False, alert=False)

    assert [f.check for f in verdict.failures] == ["key_unique"]
    (failure,) = verdict.failures
    assert failure.unexpected_count == 1
    assert [(r["meter_id"], r["channel"], r["readings"]) for r in failure.sample] == [
        ("SMR89134A", "B1", 2)
    ]
    assert [r[:4] for r in profile_rows(db, batch_id)] == [
        ("SMR89134A", "B1", 49, 1),
        ("SMR89134A", "E1", 48, 0),
    ]


def test_a_day_is_complete_per_channel_not_per_meter(db, gx_home):
    """E1 has every interval, B1 lacks one: the meter's B1 day is incomplete although the
    meter has a reading in every interval."""
    from meterflow import quality

    rows = [*channel_rows("SMR89134A", "E1"), *channel_rows("SMR89134A", "B1")[1:]]
    verdict = quality.validate_batch(stage(db, rows), publish=False, alert=False)

    assert [(f.check, f.severity) for f in verdict.failures] == [("day_complete", "warning")]
    assert verdict.failures[0].sample == [
        {
            "meter_id": "SMR89134A",
            "channel": "B1",
            "local_day": CLEAN_DAY.isoformat(),
            "intervals": 47,
            "expected": 48,
        }
    ]
    assert db.execute(
        "SELECT meter_id, channel, local_day, intervals FROM staging.batch_day_gap"
        " WHERE batch_id = %s",
        (verdict.batch_id,),
    ).fetchall() == [("SMR89134A", "B1", CLEAN_DAY, 47)]


def _capacity(db, meter: str, kwh: float) -> None:
    db.execute(
        "INSERT INTO meter.meter (meter_id, source, capacity_kwh) VALUES (%s, %s, %s)",
        (meter, meter[-1], kwh),
    )


def _with_peak(meter: str, channel: str, peak: float) -> list[tuple]:
    rows = channel_rows(meter, channel)
    return [*rows[:5], (*rows[5][:3], peak, *rows[5][4:]), *rows[6:]]


def test_the_kwh_limit_is_the_meters_capacity_else_the_global_setting(db, gx_home):
    """A commercial site with capacity 400 kWh may read 300 kWh in a half hour; a meter with
    no capacity is held to MF_MAX_KWH (25); a meter whose capacity is 5 is held to 5, on its
    export channel too; a reactive channel is never judged as kWh."""
    from meterflow import quality

    _capacity(db, "SMR89140A", 400)
    _capacity(db, "SMR89141B", 5)
    big = [*_with_peak("SMR89140A", "E1", 300.0), *_with_peak("SMR89140A", "Q1", 900.0)]
    assert quality.validate_batch(stage(db, big), publish=False, alert=False).failures == []

    over = [*_with_peak("SMR89142A", "E1", 30.0), *_with_peak("SMR89141B", "B1", 6.0)]
    verdict = quality.validate_batch(stage(db, over), publish=False, alert=False)

    assert [(f.check, f.severity) for f in verdict.failures] == [("kwh_range", "critical")]
    (failure,) = verdict.failures
    assert failure.unexpected_count == 2
    assert sorted(
        (r["meter_id"], r["channel"], float(r["kwh"]), float(r["limit_kwh"]))
        for r in failure.sample
    ) == [
        ("SMR89141B", "B1", 6.0, 5.0),
        ("SMR89142A", "E1", 30.0, 25.0),
    ]
    assert verdict.verdict == "rejected"


def test_the_kwh_limit_is_the_feeds_max_kwh_where_the_meter_has_no_capacity(
    db, gx_home, monkeypatch
):
    import dataclasses

    from meterflow import feeds, quality

    real = feeds.load_feeds()
    commercial = dataclasses.replace(real["spreadsheets"], max_kwh=350.0)
    monkeypatch.setattr(feeds, "load_feeds", lambda path=None: {**real, "spreadsheets": commercial})
    _capacity(db, "SMR89141B", 50)

    ok = stage(db, _with_peak("SMR89140A", "E1", 300.0))
    assert quality.validate_batch(ok, publish=False, alert=False).failures == []
    assert profile_rows(db, ok)[0][5] == 350

    # the meter's own capacity still wins over the feed's limit
    verdict = quality.validate_batch(
        stage(db, _with_peak("SMR89141B", "E1", 60.0)), publish=False, alert=False
    )
    assert [f.check for f in verdict.failures] == ["kwh_range"]
    assert float(verdict.failures[0].sample[0]["limit_kwh"]) == 50  # sample values are text


def test_meter_ids_are_judged_by_the_pattern_of_the_batchs_feed(db, gx_home, monkeypatch):
    """A feed of real 10-character NMIs (meter_id_pattern in feeds.yaml): its NMI batches pass
    the gate, and an id that is not an NMI is rejected by that feed's pattern."""
    import dataclasses

    from meterflow import feeds, quality

    real = feeds.load_feeds()
    nmi = dataclasses.replace(real["spreadsheets"], meter_id_pattern=r"^[A-Z0-9]{10}$")
    monkeypatch.setattr(feeds, "load_feeds", lambda path=None: {**real, "spreadsheets": nmi})

    solar = [*channel_rows("6123456789", "E1"), *channel_rows("6123456789", "B1")]
    assert quality.validate_batch(stage(db, solar), publish=False, alert=False).failures == []

    verdict = quality.validate_batch(
        stage(db, channel_rows("SMR89134A", "E1")), publish=False, alert=False
    )
    assert [f.check for f in verdict.failures] == ["meter_id_pattern"]
    assert verdict.failures[0].unexpected_count == 48
    assert verdict.verdict == "rejected"
