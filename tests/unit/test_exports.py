"""CSV cells and columns of the exports: RFC 4180, formula-safe, nested as dotted names."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import msgspec
import pytest

from coord.http.exports import cell, columns_of, csv_line, csv_row


class Org(msgspec.Struct, kw_only=True):
    code: str
    name: str


class Row(msgspec.Struct, kw_only=True):
    id: str
    raised_by: Org
    tags: list[str]
    at: datetime
    note: str | None = None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (3, "3"),
        ("=1+1", "'=1+1"),
        ("+62 812", "'+62 812"),
        ("-", "'-"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("biasa", "biasa"),
        (["a", "b"], "a; b"),
        (["=x"], "'=x"),
        ([{"k": 1}], '[{"k":1}]'),
    ],
)
def test_cells(value: object, text: str) -> None:
    """Text a spreadsheet would evaluate is prefixed; lists are joined; objects are JSON."""
    assert cell(value) == text


def test_columns_and_rows_round_trip_through_a_csv_reader() -> None:
    """Nested structs become dotted columns; quotes, commas and newlines survive."""
    columns = columns_of(Row)
    assert columns == ["id", "raised_by.code", "raised_by.name", "tags", "at", "note"]
    row = Row(
        id="1",
        raised_by=Org(code="KPU", name='KPU "Kota", Kediri\nJatim'),
        tags=["x"],
        at=datetime(2021, 10, 26, 2, tzinfo=UTC),
    )
    text = csv_line(columns) + csv_line(csv_row(row, columns))
    assert text.endswith("\r\n")
    (parsed,) = list(csv.DictReader(io.StringIO(text)))
    assert parsed["raised_by.name"] == 'KPU "Kota", Kediri\nJatim'
    assert parsed["at"] == "2021-10-26T02:00:00Z" and parsed["note"] == ""
