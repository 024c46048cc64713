"""Meter lifecycle through the real PostgreSQL: exclusion-list files, the site rule, statuses
with history, held files, tranches."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from meterflow import ingest, lifecycle, readers

pytestmark = pytest.mark.integration

# site S1: meters 1, 2, 3; site S2: meters 4, 5; meter 6 has no site
REGISTRY = [
    ("SMR00001A", "S1"),
    ("SMR00002A", "S1"),
    ("SMR00003B", "S1"),
    ("SMR00004A", "S2"),
    ("SMR00005C", "S2"),
    ("SMR00006A", None),
]


@pytest.fixture
def registry(db):
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO meter.meter (meter_id, source, site) VALUES (%s, right(%s, 1), %s)",
            [(m, m, s) for m, s in REGISTRY],
        )
    db.execute("SELECT meter.judge_loaded()")
    return db


def list_file(
    landing: Path,
    rows: list[str],
    *,
    seq: int,
    feed: str = "exclusions_noncomm",
    count: int | None = None,
    system: str = "HES",
    sep: str = "|",
) -> Path:
    path = landing / feed / f"{feed}_{seq:04d}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [sep.join(["HDR", system, str(seq), "20261201090000"]), *rows]
    lines.append(sep.join(["TRL", str(len(rows) if count is None else count)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def load(path: Path, landing: Path):
    return ingest.load_file(path, landing_dir=landing)


def statuses(db) -> dict[str, tuple]:
    rows = db.execute(
        "SELECT meter_id, status, exclusion_code, status_reason FROM meter.meter"
    ).fetchall()
    return {m: (s, c, r) for m, s, c, r in rows}


def on_list(db, name: str = "noncomm") -> dict[str, str]:
    rows = db.execute(
        "SELECT meter_id, code FROM meter.exclusion WHERE list_name = %s", (name,)
    ).fetchall()
    return dict(rows)


def test_registered_meters_without_exclusions_become_eligible(registry):
    assert {m: s for m, (s, _, _) in statuses(registry).items()} == {
        m: "eligible" for m, _ in REGISTRY
    }


def test_add_file_excludes_the_meter_and_every_meter_at_its_site(registry, landing):
    load(list_file(landing, ["SMR00001A|NONCOMM|ADD"], seq=1), landing)

    got = statuses(registry)
    assert on_list(registry) == {"SMR00001A": "NONCOMM"}
    assert got["SMR00001A"] == ("excluded", "NONCOMM", "Non-communicating")
    assert got["SMR00002A"] == ("excluded", "NONCOMM", "site of SMR00001A")
    assert got["SMR00003B"] == ("excluded", "NONCOMM", "site of SMR00001A")
    assert {got[m][0] for m in ("SMR00004A", "SMR00005C", "SMR00006A")} == {"eligible"}
    assert (landing / "processed" / "exclusions_noncomm" / "exclusions_noncomm_0001.txt").exists()


def test_lifting_the_last_exclusion_of_a_site_restores_its_meters(registry, landing):
    load(list_file(landing, ["SMR00001A|NONCOMM|ADD", "SMR00002A|TODO|ADD"], seq=1), landing)
    load(list_file(landing, ["SMR00001A|NONCOMM|REMOVE"], seq=2), landing)

    got = statuses(registry)
    assert got["SMR00001A"] == ("excluded", "TODO", "site of SMR00002A")  # 2 still excludes S1
    assert got["SMR00002A"] == ("excluded", "TODO", "To-do outstanding")

    load(list_file(landing, ["SMR00002A|TODO|REMOVE"], seq=3), landing)

    got = statuses(registry)
    assert on_list(registry) == {}
    for meter in ("SMR00001A", "SMR00002A", "SMR00003B"):
        assert got[meter] == ("eligible", None, "exclusion lifted")


def test_all_file_replaces_the_whole_list_in_one_go(registry, landing):
    load(list_file(landing, ["SMR00001A|NONCOMM|ADD", "SMR00004A|NONCOMM|ADD"], seq=1), landing)

    load(
        list_file(landing, ["SMR00004A,MANUAL,ALL", "SMR00006A,NONCOMM,ALL"], seq=2, sep=","),
        landing,
    )

    assert on_list(registry) == {"SMR00004A": "MANUAL", "SMR00006A": "NONCOMM"}
    got = statuses(registry)
    assert {got[m][0] for m in ("SMR00001A", "SMR00002A", "SMR00003B")} == {"eligible"}
    assert got["SMR00005C"] == ("excluded", "MANUAL", "site of SMR00004A")
    assert got["SMR00006A"][0] == "excluded"
    log = registry.execute(
        "SELECT method, rows_added, rows_changed, rows_removed, status FROM audit.list_load "
        "ORDER BY load_id"
    ).fetchall()
    assert log == [("ADD/REMOVE", 2, 0, 0, "loaded"), ("ALL", 1, 1, 1, "loaded")]


def test_every_status_change_is_a_history_row_naming_the_file(registry, landing):
    load(list_file(landing, ["SMR00004A|MANUAL|ADD"], seq=1), landing)

    history = registry.execute(
        "SELECT from_status, to_status, exclusion_code, reason, actor FROM meter.status_history "
        "WHERE meter_id = 'SMR00005C' ORDER BY history_id"
    ).fetchall()
    assert history[0][:2] == (None, "loaded")
    assert history[1][:2] == ("loaded", "eligible")
    assert history[2] == (
        "eligible",
        "excluded",
        "MANUAL",
        "site of SMR00004A",
        "file:exclusions_noncomm_0001.txt",
    )


def _held(registry, landing, path: Path, problem: str) -> None:
    before = on_list(registry), statuses(registry)
    with pytest.raises(readers.UnreadableFile, match=problem):
        load(path, landing)
    assert (on_list(registry), statuses(registry)) == before
    row = registry.execute(
        "SELECT l.status, coalesce('line ' || e.line_no || ': ', '') || e.problem"
        " FROM audit.list_load l JOIN audit.list_error e USING (load_id) WHERE l.file_name = %s",
        (path.name,),
    ).fetchall()
    assert len(row) == 1 and row[0][0] == "held" and problem in row[0][1]
    failed = landing / "failed" / path.parent.name / path.name
    assert failed.exists() and problem in Path(str(failed) + ".error.txt").read_text()


def test_footer_count_that_disagrees_holds_the_file(registry, landing):
    path = list_file(landing, ["SMR00001A|NONCOMM|ADD", "SMR00004A|NONCOMM|ADD"], seq=1, count=3)
    _held(registry, landing, path, "footer says 3 rows, the file has 2")


def test_sequence_gap_holds_the_file(registry, landing):
    load(list_file(landing, ["SMR00001A|NONCOMM|ADD"], seq=1), landing)
    path = list_file(landing, ["SMR00004A|NONCOMM|ADD"], seq=3)
    _held(registry, landing, path, "sequence gap: HES sent 3, expected 2")


def test_repeated_sequence_holds_the_file(registry, landing):
    load(list_file(landing, ["SMR00001A|NONCOMM|ADD"], seq=1), landing)
    path = landing / "exclusions_noncomm" / "again.txt"
    path.write_text("HDR|HES|1|20261202090000\nSMR00004A|NONCOMM|ADD\nTRL|1\n")
    _held(registry, landing, path, "sequence 1 of HES repeats")


def test_an_unknown_code_holds_the_file(registry, landing):
    path = list_file(landing, ["SMR00001A|NONCOMM|ADD", "SMR00004A|BROKEN|ADD"], seq=1)
    _held(registry, landing, path, "line 3: unknown exclusion code 'BROKEN'")


def test_a_load_that_never_finished_is_marked_cleaned_by_the_next(registry, landing):
    registry.execute(
        "INSERT INTO audit.list_load (feed, file_name, sha256, system, sequence) "
        "VALUES ('exclusions_noncomm', 'killed.txt', 'x', 'HES', 1)"
    )
    load(list_file(landing, ["SMR00001A|NONCOMM|ADD"], seq=1), landing)

    log = registry.execute(
        "SELECT file_name, status, message FROM audit.list_load ORDER BY load_id"
    ).fetchall()
    assert log[0][:2] == ("killed.txt", "cleaned") and "cleaned up by load" in log[0][2]
    assert log[1][:2] == ("exclusions_noncomm_0001.txt", "loaded")


def test_tranche_takes_whole_sites_oldest_first_never_an_excluded_meter(registry, landing):
    # eligible since: S2 first, then meter 6, then S1
    registry.execute(
        "UPDATE meter.meter SET status_since = CASE coalesce(site, meter_id) "
        "WHEN 'S2' THEN timestamptz '2026-01-01' WHEN 'SMR00006A' THEN '2026-02-01' "
        "ELSE '2026-03-01' END"
    )
    load(list_file(landing, ["SMR00004A|VULN|ADD"], seq=1), landing)  # S2 excluded

    first = lifecycle.select_tranche(3, date(2026, 12, 1), system="DCC")
    second = lifecycle.select_tranche(3, date(2026, 12, 1), system="DCC")

    def members(t):
        return sorted(
            m
            for (m,) in registry.execute(
                "SELECT meter_id FROM meter.tranche_meter WHERE tranche_id = %s",
                (t["tranche_id"],),
            )
        )

    # S1 (3 meters) would make the first tranche 4: it waits, whole, for the second
    assert members(first) == ["SMR00006A"]
    assert members(second) == ["SMR00001A", "SMR00002A", "SMR00003B"]
    assert (first["sequence"], second["sequence"]) == (1, 2)
    got = statuses(registry)
    assert got["SMR00004A"][0] == got["SMR00005C"][0] == "excluded"
    assert got["SMR00001A"][0] == "selected"


def test_every_status_of_the_reference_table_and_no_other_is_accepted(registry):
    import psycopg

    codes = [c for (c,) in registry.execute("SELECT code FROM ref.meter_status ORDER BY code")]
    assert codes == ["eligible", "excluded", "loaded", "notified", "selected"]
    for code in codes:
        registry.execute("UPDATE meter.meter SET status = %s WHERE meter_id = 'SMR00006A'", (code,))
    with pytest.raises(psycopg.errors.CheckViolation):
        registry.execute("UPDATE meter.meter SET status = 'migrated' WHERE meter_id = 'SMR00006A'")


def test_files_landed_together_load_in_sequence_order_not_as_a_gap(registry, landing):
    first = list_file(landing, ["SMR00001A|NONCOMM|ADD"], seq=1)
    second = list_file(landing, ["SMR00001A|NONCOMM|REMOVE"], seq=2)

    with pytest.raises(lifecycle.ListFileWaiting, match=r"waits for exclusions_noncomm_0001\.txt"):
        load(second, landing)  # a parallel task took the later file first
    assert second.exists()
    load(first, landing)
    load(second, landing)

    assert on_list(registry) == {}
    log = registry.execute("SELECT sequence, status FROM audit.list_load ORDER BY load_id")
    assert log.fetchall() == [(1, "loaded"), (2, "loaded")]


def test_a_registry_file_judges_its_meters_as_they_register(db, landing):
    # the list names a meter before the registry has it
    load(list_file(landing, ["SMR00021A|FIRMWARE|ADD"], seq=1), landing)
    registry_file = landing / "registry" / "meters.csv"
    registry_file.parent.mkdir(parents=True)
    registry_file.write_text(
        "meter_id,site\nSMR00021A,S7\nSMR00022A,S7\nSMR00023A,S8\nSMR00024A,\n"
    )

    load(registry_file, landing)

    got = statuses(db)
    assert got["SMR00021A"] == ("excluded", "FIRMWARE", "Firmware")
    assert got["SMR00022A"] == ("excluded", "FIRMWARE", "site of SMR00021A")
    assert got["SMR00023A"] == got["SMR00024A"] == ("eligible", None, "no exclusion")
    history = db.execute(
        "SELECT meter_id, from_status, to_status FROM meter.status_history "
        "WHERE meter_id IN ('SMR00022A', 'SMR00023A') ORDER BY meter_id, history_id"
    ).fetchall()
    assert history == [
        ("SMR00022A", None, "loaded"),  # its site has a listed meter: judged by the site rule
        ("SMR00022A", "loaded", "excluded"),
        ("SMR00023A", None, "eligible"),  # one row version, one history row
    ]
