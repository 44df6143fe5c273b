"""Kemendagri region registry and scope coverage."""

import pytest

from events.domain.regions import Region, Regions, covers, load_regions


def test_registry_holds_38_provinces_and_514_regencies() -> None:
    """The packaged CSV loads into 38 provinces and 514 regencies/cities."""
    regions = load_regions()
    assert len(regions.provinces()) == 38
    assert len(regions.all()) == 38 + 514
    assert sum(1 for r in regions if r.level == "regency") == 514


def test_load_regions_is_cached() -> None:
    """The registry is read once: repeated loads return the same object."""
    assert load_regions() is load_regions()


def test_get_returns_kota_kediri() -> None:
    """A dotted regency code resolves to its row, with its province."""
    kediri = load_regions().get("35.71")
    assert kediri == Region(
        code="35.71", name="Kota Kediri", level="regency", province_code="35", kind="kota"
    )


@pytest.mark.parametrize("code", ["99", "35.99", "3571", "", "jatim"])
def test_get_unknown_code_is_none(code: str) -> None:
    """Unknown codes are absent, not errors."""
    regions = load_regions()
    assert regions.get(code) is None
    assert code not in regions


def test_province_of() -> None:
    """A regency's province is its parent; a province is its own province."""
    regions = load_regions()
    assert regions.province_of("35.71") == "35"
    assert regions.province_of("35") == "35"
    with pytest.raises(KeyError):
        regions.province_of("35.99")


def test_children_of_jawa_timur() -> None:
    """Jawa Timur has 38 regencies and cities, Kota Kediri among them."""
    children = load_regions().children("35")
    assert len(children) == 38
    assert all(c.province_code == "35" for c in children)
    assert "Kota Kediri" in {c.name for c in children}
    assert load_regions().children("35.71") == ()


@pytest.mark.parametrize(
    ("scope", "code", "expected"),
    [
        (["35"], "35", True),
        (["35"], "35.71", True),
        (["35.71"], "35.71", True),
        (["35.71"], "35", False),  # a city does not see its province
        (["35.71"], "35.72", False),
        (["35"], "33.71", False),
        (["31", "35.71"], "35.71", True),
        ([], "35.71", False),
        (["3"], "35.71", False),  # prefix is not coverage
    ],
)
def test_covers(scope: list[str], code: str, expected: bool) -> None:
    """A province covers itself and its regencies; a regency covers itself only."""
    assert covers(scope, code) is expected


def test_registry_rejects_duplicates_and_orphans() -> None:
    """A malformed registry fails at construction, not at lookup."""
    jatim = Region(
        code="35", name="Jawa Timur", level="province", province_code=None, kind="provinsi"
    )
    kediri = Region(
        code="35.71", name="Kota Kediri", level="regency", province_code="35", kind="kota"
    )
    with pytest.raises(ValueError, match="duplicate"):
        Regions([jatim, jatim])
    with pytest.raises(ValueError, match="unknown province"):
        Regions([kediri])
