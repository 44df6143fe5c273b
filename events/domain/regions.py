"""Kemendagri region reference data: 38 provinces and 514 regencies/cities.

Codes are dotted: a province is ``35`` (Jawa Timur), a regency or city ``35.71``
(Kota Kediri). The CSV ships inside the package and is read once, on first use.
"""

import csv
import functools
import io
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Literal

import msgspec

RegionLevel = Literal["province", "regency"]
RegionKind = Literal["provinsi", "kabupaten", "kota"]

DATA_FILE = "regions-kemendagri-2025.csv"


class Region(msgspec.Struct, frozen=True, kw_only=True):
    """One province or regency/city; ``province_code`` is None for a province."""

    code: str
    name: str
    level: RegionLevel
    province_code: str | None
    kind: RegionKind


def parent_code(code: str) -> str:
    """The province part of a dotted code: ``35.71`` -> ``35``, ``35`` -> ``35``."""
    return code.split(".", 1)[0]


def covers(scope_codes: Iterable[str], code: str) -> bool:
    """Whether a scope reaches ``code``: a province covers itself and its regencies,
    a regency covers itself only."""
    province = parent_code(code)
    # A regency scope never covers its province: "35.71" must not see province-wide data.
    return any(scope == code or scope == province for scope in scope_codes)


class Regions:
    """An immutable registry of regions indexed by code."""

    def __init__(self, regions: Iterable[Region]) -> None:
        self._by_code: dict[str, Region] = {}
        self._children: dict[str, list[Region]] = {}
        for region in regions:
            if region.code in self._by_code:
                raise ValueError(f"duplicate region code {region.code!r}")
            self._by_code[region.code] = region
            if region.province_code is not None:
                self._children.setdefault(region.province_code, []).append(region)
        for region in self._by_code.values():
            if region.province_code is not None and region.province_code not in self._by_code:
                raise ValueError(f"region {region.code!r} names unknown province")

    @classmethod
    def from_csv(cls, text: str) -> "Regions":
        """Parse the ``code,name,level,province_code,kind`` CSV text."""
        rows = csv.DictReader(io.StringIO(text))
        return cls(
            msgspec.convert(
                {**row, "province_code": row["province_code"] or None},
                Region,
            )
            for row in rows
        )

    def get(self, code: str) -> Region | None:
        """The region with this code, or None."""
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def name_of(self, code: str | None) -> str | None:
        """The region's name (views print it beside the code), or None for an unknown code."""
        region = self._by_code.get(code) if code is not None else None
        return region.name if region is not None else None

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[Region]:
        return iter(self._by_code.values())

    def province_of(self, code: str) -> str:
        """The province code of a known region (a province is its own province).

        Raises KeyError for an unknown code.
        """
        region = self._by_code[code]
        return region.province_code or region.code

    def all(self) -> tuple[Region, ...]:
        """Every region, in file order (provinces first)."""
        return tuple(self._by_code.values())

    def provinces(self) -> tuple[Region, ...]:
        """The provinces only."""
        return tuple(r for r in self._by_code.values() if r.level == "province")

    def children(self, province_code: str) -> tuple[Region, ...]:
        """The regencies and cities of a province; empty for an unknown code or a regency."""
        return tuple(self._children.get(province_code, ()))


@functools.cache
def load_regions() -> Regions:
    """Load the packaged registry once; later calls return the same object."""
    text = resources.files("events").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    return Regions.from_csv(text)
