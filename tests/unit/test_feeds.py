"""feeds.yaml: the shipped feeds parse, and a bad feed file names the key that is wrong."""

from __future__ import annotations

import pytest

from meterflow import feeds


def parse(feed: dict, defaults: dict | None = None):
    return feeds.parse_feeds({"defaults": defaults or {}, "feeds": {"mine": feed}})


def test_the_shipped_feeds_cover_spreadsheets_nem12_and_stream_packets():
    known = feeds.load_feeds()
    assert {"spreadsheets", "nem12", "stream"} <= set(known)
    assert known["spreadsheets"].layout == "auto" and known["spreadsheets"].source == "suffix"
    assert (known["nem12"].timezone, known["nem12"].timestamp_marks) == (
        "Etc/GMT-10",
        "end",
    )
    assert (known["stream"].layout, known["stream"].timestamp_rounding) == ("packets", "floor")


@pytest.mark.parametrize(
    ("feed", "key"),
    [
        ({"folder": "x", "layuot": "long"}, "feeds.mine.layuot"),
        ({"folder": "x", "layout": "diagonal"}, "feeds.mine.layout"),
        ({"folder": "x", "units": "joules"}, "feeds.mine.units"),
        ({"folder": "x", "timezone": "Mars/Olympus"}, "feeds.mine.timezone"),
        ({"folder": "x", "source": "D"}, "feeds.mine.source"),
        ({"folder": "x", "meter_id_pattern": "(unclosed"}, "feeds.mine.meter_id_pattern"),
        ({"folder": "x", "interval_minutes": 15}, "feeds.mine.interval_minutes"),
        ({"folder": "processed"}, "feeds.mine.folder"),
        ({"layout": "long"}, "feeds.mine.folder"),
    ],
)
def test_a_bad_feed_setting_fails_with_a_message_naming_its_key(feed, key):
    with pytest.raises(feeds.FeedError) as caught:
        parse(feed)
    assert str(caught.value).startswith(f"feeds.yaml: {key}: ")


def test_two_feeds_on_one_folder_are_refused():
    with pytest.raises(feeds.FeedError, match=r"feeds\.b\.folder: .*also feed 'a'"):
        feeds.parse_feeds({"feeds": {"a": {"folder": "x"}, "b": {"folder": "x"}}})


def test_defaults_apply_to_every_feed_and_a_feed_overrides_them():
    known = feeds.parse_feeds(
        {
            "defaults": {"timezone": "Europe/Dublin", "units": "Wh"},
            "feeds": {"a": {"folder": "a"}, "b": {"folder": "b", "units": "kWh"}},
        }
    )
    assert (known["a"].timezone, known["a"].units) == ("Europe/Dublin", "Wh")
    assert (known["b"].timezone, known["b"].units) == ("Europe/Dublin", "kWh")


def test_a_file_is_taken_by_the_feed_of_its_folder_and_pattern(tmp_path):
    landing = tmp_path
    (landing / "nem12").mkdir()
    assert feeds.feed_for_path(landing / "nem12" / "day.zip", landing).name == "nem12"
    assert feeds.feed_for_path(landing / "stream" / "seg.jsonl", landing).name == "stream"
    assert feeds.feed_for_path(landing / "stream" / "notes.txt", landing) is None
    assert feeds.feed_for_path(landing / "elsewhere" / "a.csv", landing) is None
