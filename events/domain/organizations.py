"""Organizations that convene, host, speak at hearings and raise issues."""

from typing import Annotated, Final, Literal, get_args

import msgspec

OrganizationCode = Literal[
    "KPU",  # Komisi Pemilihan Umum (election commission)
    "BAWASLU",  # Badan Pengawas Pemilu (election supervisory body)
    "DKPP",  # Dewan Kehormatan Penyelenggara Pemilu (ethics council)
    "KESBANGPOL",  # Badan Kesatuan Bangsa dan Politik (regional government unit)
    "WANTANNAS",  # Dewan Ketahanan Nasional (National Resilience Council)
    "PEMDA",  # Pemerintah Daerah (regional government)
    "POLRI",  # Kepolisian Negara Republik Indonesia
    "TNI",  # Tentara Nasional Indonesia
    "OTHER",
]

ORGANIZATION_CODES: Final[tuple[str, ...]] = get_args(OrganizationCode)

# Non-blank: msgspec applies `pattern` with re.search, so one non-space character suffices.
OrganizationName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]


class Organization(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An organization by kind and by its own name, e.g. KPU / "KPU Kota Kediri"."""

    code: OrganizationCode
    name: OrganizationName
