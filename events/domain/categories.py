"""The fixed issue taxonomy: English codes with English and Indonesian labels."""

from typing import Final, Literal, get_args

CategoryCode = Literal[
    "personnel",
    "regulation",
    "budget_honorarium",
    "adhoc_bodies_welfare_safety",
    "supervision",
    "campaign",
    "voter_education_participation",
    "technology_social_media",
    "logistics",
    "security",
    "other",
]

#: code -> (English label, Indonesian label)
CATEGORIES: Final[dict[str, tuple[str, str]]] = {
    "personnel": ("Personnel", "SDM"),
    "regulation": ("Regulation", "Regulasi"),
    "budget_honorarium": ("Budget and honorarium", "Anggaran dan Honorarium"),
    "adhoc_bodies_welfare_safety": (
        "Ad hoc bodies' welfare and safety",
        "Kesejahteraan dan Keselamatan Badan Adhoc",
    ),
    "supervision": ("Supervision", "Pengawasan"),
    "campaign": ("Campaign", "Kampanye"),
    "voter_education_participation": (
        "Voter education and participation",
        "Pendidikan Pemilih dan Partisipasi Masyarakat",
    ),
    "technology_social_media": ("Technology and social media", "Teknologi dan Media Sosial"),
    "logistics": ("Logistics", "Logistik"),
    "security": ("Security", "Keamanan"),
    "other": ("Other", "Lainnya"),
}

CATEGORY_CODES: Final[tuple[str, ...]] = get_args(CategoryCode)
