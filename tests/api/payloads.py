"""Domain payloads from the seed article (Kota Kediri, 26 Oct 2021), as clients send them."""

from __future__ import annotations

import uuid
from typing import Any


def hearing_scheduled(region: str = "35.71", **over: Any) -> dict[str, Any]:
    """The contract payload of HearingScheduled."""
    data = {
        "region_code": region,
        "title": "Dengar pendapat persiapan Pemilu dan Pemilihan 2024",
        "agenda": "Persiapan pelaksanaan pemilu dan pemilihan 2024",
        "venue": "Ruang Joyoboyo",
        "scheduled_at": "2021-10-26T09:00:00+07:00",
        "convened_by": {"code": "WANTANNAS", "name": "Setjen Wantannas"},
        "host_organization": {"code": "KESBANGPOL", "name": "Kesbangpol Kota Kediri"},
    }
    data.update(over)
    return data


def issue_raised(hearing_id: str | None, region: str = "35.71", **over: Any) -> dict[str, Any]:
    """The contract payload of IssueRaised."""
    data: dict[str, Any] = {
        "region_code": region,
        "raised_by": {"code": "KPU", "name": "KPU Kota Kediri"},
        "category": "budget_honorarium",
        "title": "Honorarium badan adhoc minimal sesuai UMR",
        "description": "Peningkatan beban kerja badan adhoc perlu diimbangi kenaikan honorarium.",
        "severity": 4,
    }
    if hearing_id is not None:
        data["hearing_id"] = hearing_id
    data.update(over)
    return data


def recommendation_drafted(issue_ids: list[str], **over: Any) -> dict[str, Any]:
    """The contract payload of RecommendationDrafted."""
    data = {
        "title": "Standar honorarium KPPS minimal UMR",
        "body": "Menetapkan honorarium KPPS minimal sesuai UMR karena beban kerja ekstra.",
        "addressee": "Presiden",
        "issue_ids": issue_ids,
    }
    data.update(over)
    return data


def statement(text: str = "Tugas kami disini adalah mendengarkan permasalahan.") -> dict[str, Any]:
    """A StatementRecorded payload."""
    return {
        "speaker": "Ismail Bafadal",
        "organization": {"code": "WANTANNAS", "name": "Setjen Wantannas"},
        "text": text,
    }


def new_id() -> str:
    """A fresh UUID string."""
    return str(uuid.uuid4())


def append(expected: Any, *events: tuple[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An append request body."""
    return {
        "expected_version": expected,
        "events": [{"type": t, "data": d, **extra} for t, d in events],
    }
