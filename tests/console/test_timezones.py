"""Province -> time zone table and the console's Indonesian dates (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from coord.console.i18n import Translator, negotiate_header
from events.domain.regions import load_regions
from events.domain.timezones import PROVINCE_ZONES, zone_name

KEDIRI_HEARING = datetime(2021, 10, 26, 2, 0, tzinfo=UTC)  # 09.00 in Kota Kediri


def test_every_province_of_the_registry_has_a_zone() -> None:
    """No province of the Kemendagri registry is left without a legal zone, and no extra."""
    assert {p.code for p in load_regions().provinces()} == set(PROVINCE_ZONES)


def test_zones_follow_keppres_41_1987() -> None:
    """Samples of each zone, including the Kalimantan split and the new Papua provinces."""
    assert zone_name("35.71") == "WIB"  # Kota Kediri
    assert zone_name("61") == "WIB" and zone_name("62") == "WIB"  # West, Central Kalimantan
    assert zone_name("63") == "WITA" and zone_name("64") == "WITA" and zone_name("65") == "WITA"
    assert zone_name("51.71") == "WITA"  # Kota Denpasar
    assert zone_name("73") == "WITA" and zone_name("53") == "WITA"
    assert zone_name("81") == "WIT" and zone_name("82") == "WIT" and zone_name("95") == "WIT"
    assert zone_name(None) == "WIB" and zone_name("99.99") == "WIB"


def test_indonesian_date_format_in_the_regions_zone() -> None:
    """`26 Oktober 2021, 09.00 WIB`; the same moment is 10.00 WITA in Bali, 11.00 WIT in Papua."""
    t = Translator("id")
    assert t.datetime(KEDIRI_HEARING, "35.71") == "26 Oktober 2021, 09.00 WIB"
    assert t.datetime(KEDIRI_HEARING, "51.71") == "26 Oktober 2021, 10.00 WITA"
    assert t.datetime(KEDIRI_HEARING, "91.71") == "26 Oktober 2021, 11.00 WIT"
    late = datetime(2021, 12, 31, 16, 30, tzinfo=UTC)
    assert t.datetime(late, "91") == "1 Januari 2022, 01.30 WIT"  # the date moves too
    assert Translator("en").datetime(KEDIRI_HEARING, "35.71") == "26 October 2021, 09:00 WIB"


def test_language_negotiation() -> None:
    """Indonesian unless English is preferred; `in` is Indonesian; q-values decide."""
    assert negotiate_header("") == "id"
    assert negotiate_header("en-US,en;q=0.9") == "en"
    assert negotiate_header("en;q=0.5, id;q=0.8") == "id"
    assert negotiate_header("in, en;q=0.1") == "id"
    assert negotiate_header("fr, de") == "id"
    assert negotiate_header("en;q=0") == "id"
    assert negotiate_header("en;q=abc, de") == "id"


def test_translator_labels() -> None:
    """Categories from the taxonomy, statuses from the catalogue, in both languages."""
    assert Translator("id").category("budget_honorarium") == "Anggaran dan Honorarium"
    assert Translator("en").category("budget_honorarium") == "Budget and honorarium"
    assert Translator("id").status("open") == "Terbuka"
    assert Translator("en").status("withdrawn") == "Withdrawn"
