"""Indonesia's three legal time zones, by province (Kemendagri province codes).

Source: Keputusan Presiden Nomor 41 Tahun 1987 tentang Pembagian Wilayah Republik
Indonesia Menjadi 3 (Tiga) Wilayah Waktu (in force since 1 January 1988):

- WIB, Waktu Indonesia Barat, UTC+7: the provinces of Sumatra, Java, and West and
  Central Kalimantan;
- WITA, Waktu Indonesia Tengah, UTC+8: South, East and North Kalimantan, Bali, NTB, NTT
  and Sulawesi;
- WIT, Waktu Indonesia Timur, UTC+9: Maluku, Maluku Utara and the Papua provinces.

Provinces created since then (Kepulauan Riau, Bangka Belitung, Banten, Gorontalo,
Sulawesi Barat, Kalimantan Utara, the new Papua provinces) keep the zone of the
province they were split from. Indonesia has no daylight saving time, so each zone is a
fixed offset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Literal

from events.domain.regions import parent_code

ZoneName = Literal["WIB", "WITA", "WIT"]

#: zone -> UTC offset
ZONES: Final[dict[ZoneName, timezone]] = {
    "WIB": timezone(timedelta(hours=7), "WIB"),
    "WITA": timezone(timedelta(hours=8), "WITA"),
    "WIT": timezone(timedelta(hours=9), "WIT"),
}

#: province code -> zone (every province of the Kemendagri 2025 registry)
PROVINCE_ZONES: Final[dict[str, ZoneName]] = {
    "11": "WIB",  # Aceh
    "12": "WIB",  # Sumatera Utara
    "13": "WIB",  # Sumatera Barat
    "14": "WIB",  # Riau
    "15": "WIB",  # Jambi
    "16": "WIB",  # Sumatera Selatan
    "17": "WIB",  # Bengkulu
    "18": "WIB",  # Lampung
    "19": "WIB",  # Kepulauan Bangka Belitung
    "21": "WIB",  # Kepulauan Riau
    "31": "WIB",  # DKI Jakarta
    "32": "WIB",  # Jawa Barat
    "33": "WIB",  # Jawa Tengah
    "34": "WIB",  # DI Yogyakarta
    "35": "WIB",  # Jawa Timur
    "36": "WIB",  # Banten
    "51": "WITA",  # Bali
    "52": "WITA",  # Nusa Tenggara Barat
    "53": "WITA",  # Nusa Tenggara Timur
    "61": "WIB",  # Kalimantan Barat
    "62": "WIB",  # Kalimantan Tengah
    "63": "WITA",  # Kalimantan Selatan
    "64": "WITA",  # Kalimantan Timur
    "65": "WITA",  # Kalimantan Utara
    "71": "WITA",  # Sulawesi Utara
    "72": "WITA",  # Sulawesi Tengah
    "73": "WITA",  # Sulawesi Selatan
    "74": "WITA",  # Sulawesi Tenggara
    "75": "WITA",  # Gorontalo
    "76": "WITA",  # Sulawesi Barat
    "81": "WIT",  # Maluku
    "82": "WIT",  # Maluku Utara
    "91": "WIT",  # Papua
    "92": "WIT",  # Papua Barat
    "93": "WIT",  # Papua Selatan
    "94": "WIT",  # Papua Tengah
    "95": "WIT",  # Papua Pegunungan
    "96": "WIT",  # Papua Barat Daya
}

#: The zone of national staff (Jakarta), and of anything without a region.
NATIONAL_ZONE: Final[ZoneName] = "WIB"


def zone_name(region_code: str | None) -> ZoneName:
    """The zone of a province or regency code (``35.71`` -> ``WIB``); WIB without one.

    An unknown code falls back to WIB (Jakarta time) rather than failing a page.
    """
    if region_code is None:
        return NATIONAL_ZONE
    return PROVINCE_ZONES.get(parent_code(region_code), NATIONAL_ZONE)


def zone_of(region_code: str | None) -> timezone:
    """The fixed-offset tzinfo of a region's zone."""
    return ZONES[zone_name(region_code)]


def local_time(moment: datetime, region_code: str | None) -> datetime:
    """`moment` (aware) as wall-clock time in the region's zone."""
    if moment.tzinfo is None:  # never stored so; treat as UTC rather than guess
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone_of(region_code))
