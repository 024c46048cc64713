"""What the stream receiver accepts as a packet, and how it writes it to a segment."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from meterflow.stream.packets import errors, parse, to_lines

GOOD = {"id": "SMR89134A", "timestamp": "2025-02-08T00:31:00Z", "reading_kWh": 5.5}


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def problems(raw: bytes) -> list[tuple]:
    with pytest.raises(ValidationError) as caught:
        parse(raw)
    return [(tuple(e["loc"]), e["type"]) for e in errors(caught.value)]


def test_the_issue_example_with_a_numeric_id_is_accepted_as_sent():
    raw = b'{"id": 999999999, "timestamp": "2025-02-08T00:31:00Z", "reading_kWh": 5.5}'
    assert json.loads(to_lines(parse(raw))) == {
        "id": 999999999,
        "timestamp": "2025-02-08T00:31:00Z",
        "reading_kWh": 5.5,
    }


def test_an_array_becomes_one_line_per_packet_in_order():
    second = {**GOOD, "id": "SMR89135B", "timestamp": "2025-02-08T01:01:00+00:00"}
    lines = to_lines(parse(body([GOOD, second]))).decode().splitlines()
    assert [json.loads(line) for line in lines] == [GOOD, second]


def test_a_missing_field_is_named():
    assert problems(body({"id": "SMR89134A", "timestamp": GOOD["timestamp"]})) == [
        (("body", "reading_kWh"), "missing")
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reading_kWh", "5.5"),
        ("reading_kWh", True),
        ("reading_kWh", None),
        ("id", "SMR1234A"),
        ("id", "SMR89134D"),
        ("id", "999999999"),
        ("id", -5),
        ("id", 1.5),
        ("timestamp", 1738974660),
    ],
)
def test_a_wrong_type_or_shape_is_named(field, value):
    assert [loc for loc, _type in problems(body({**GOOD, field: value}))] == [("body", field)]


@pytest.mark.parametrize(
    "stamp",
    ["2025-02-08 00:31:00", "2025-02-08T00:31:00", "2025-02-30T00:31:00Z", "08/02/2025 00:31", ""],
)
def test_a_bad_timestamp_is_refused(stamp):
    assert problems(body({**GOOD, "timestamp": stamp}))[0][0] == ("body", "timestamp")


def test_an_infinite_reading_is_refused():
    raw = body(GOOD).replace(b"5.5", b"1e999")
    assert problems(raw) == [(("body", "reading_kWh"), "finite_number")]


def test_unknown_fields_are_refused_rather_than_dropped():
    assert problems(body({**GOOD, "reading_kwh": 1})) == [
        (("body", "reading_kwh"), "extra_forbidden")
    ]


def test_errors_in_an_array_name_the_index():
    assert problems(body([GOOD, {**GOOD, "id": "X"}])) == [(("body", 1, "id"), "value_error")]


def test_invalid_json_and_an_empty_array_are_refused():
    assert problems(b'{"id": ')[0][1] == "json_invalid"
    assert problems(b"[]")[0][1] == "too_short"


def test_implausible_values_are_stored_for_cleansing_to_judge():
    raw = body({**GOOD, "reading_kWh": -1.0, "timestamp": "2099-01-01T00:31:00Z"})
    assert len(parse(raw)) == 1
