"""Language of a console page (Indonesian unless asked otherwise) and text in that language.

The words live in coord/console/catalogue.py; category labels come from the taxonomy
itself (events/domain/categories.py). Dates and times are shown in the zone of the region they
belong to (events/domain/timezones.py), in the Indonesian style: ``26 Oktober 2021, 09.00 WIB``.
"""

from __future__ import annotations

from datetime import datetime as Datetime
from typing import Final, Literal

from aiohttp import web

from coord.console.catalogue import MESSAGES
from coord.console.sessions import LANG_COOKIE
from events.domain.categories import CATEGORIES
from events.domain.timezones import local_time, zone_name

Lang = Literal["id", "en"]
LANGS: Final[tuple[Lang, ...]] = ("id", "en")
DEFAULT_LANG: Final[Lang] = "id"

_MONTHS_ID = (
    "Januari Februari Maret April Mei Juni Juli Agustus September Oktober November Desember"
).split()
_MONTHS_EN = (
    "January February March April May June July August September October November December"
).split()
_MONTHS: Final[dict[Lang, tuple[str, ...]]] = {"id": tuple(_MONTHS_ID), "en": tuple(_MONTHS_EN)}


def parse_lang(value: str | None) -> Lang | None:
    """`id`/`en` (also `in`, the old code for Indonesian, and regional tags like `en-GB`)."""
    if not value:
        return None
    primary = value.strip().lower().split("-", 1)[0]
    if primary in ("id", "in"):
        return "id"
    if primary == "en":
        return "en"
    return None


def negotiate(request: web.Request) -> Lang:
    """The chosen language (cookie set by the language link), else Accept-Language, else id."""
    chosen = parse_lang(request.cookies.get(LANG_COOKIE))
    if chosen is not None:
        return chosen
    return negotiate_header(request.headers.get("Accept-Language", ""))


def negotiate_header(header: str) -> Lang:
    """The best of id/en by an `Accept-Language` header's q-values; id when neither is asked."""
    best: tuple[float, Lang] | None = None
    for part in header.split(",")[:20]:
        tag, _, params = part.partition(";")
        lang = parse_lang(tag)
        if lang is None:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if best is None or quality > best[0]:
            best = (quality, lang)
    return best[1] if best is not None and best[0] > 0 else DEFAULT_LANG


class Translator:
    """Text of one language: messages, labels and dates."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang
        self._index = LANGS.index(lang)

    def __call__(self, key: str, **values: object) -> str:
        """The message `key` in this language, with `{name}` placeholders filled in."""
        entry = MESSAGES.get(key)
        if entry is None:
            return key  # a missing entry shows its key instead of failing the page
        text = entry[self._index]
        return text.format(**values) if values else text

    def category(self, code: str) -> str:
        """An issue category's label."""
        labels = CATEGORIES.get(code)
        if labels is None:
            return code
        return labels[1] if self.lang == "id" else labels[0]

    def status(self, code: str) -> str:
        """A status label (issues, hearings, recommendations)."""
        return self(f"status.{code}") if f"status.{code}" in MESSAGES else code

    def organization(self, code: str) -> str:
        """An organization kind's label."""
        key = f"org.{code}"
        return self(key) if key in MESSAGES else code

    def event_type(self, name: str) -> str:
        """A recommendation timeline entry's label."""
        key = f"event.{name}"
        return self(key) if key in MESSAGES else name

    def datetime(self, moment: Datetime | None, region_code: str | None = None) -> str:
        """``26 Oktober 2021, 09.00 WIB`` in the region's zone (`en`: ``09:00``)."""
        if moment is None:
            return ""
        local = local_time(moment, region_code)
        sep = "." if self.lang == "id" else ":"
        return (
            f"{self.date(local)}, {local.hour:02d}{sep}{local.minute:02d} {zone_name(region_code)}"
        )

    def date(self, moment: Datetime, region_code: str | None = None) -> str:
        """``26 Oktober 2021`` (in the region's zone when `region_code` is given)."""
        local = local_time(moment, region_code) if region_code is not None else moment
        return f"{local.day} {_MONTHS[self.lang][local.month - 1]} {local.year}"

    def month(self, month: int, year: int) -> str:
        """``Oktober 2021``."""
        return f"{_MONTHS[self.lang][month - 1]} {year}"
