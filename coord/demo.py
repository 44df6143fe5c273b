"""Demo data: the Kota Kediri hearing of 26 October 2021, and generated hearings across Indonesia.

Loaded once (every id is a uuid5 of a fixed name, so a second load finds the
Kediri hearing and stops). Everything is written through the normal write path
as the offices that would write it, so demo events carry real actors and obey
every rule. Demo tokens (one per role) are created on the first load and kept in
`COORD_HOME/demo-tokens.json` (mode 0600) so each `make run` can print them.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import msgspec
import structlog

from coord.auth import Principal
from coord.tokens import TokenService
from coord.writes import Origin, Proposed, WritePath
from events.domain.regions import Regions
from events.domain.timezones import zone_of

log = structlog.get_logger("coord.demo")

_NS = uuid.UUID("5b0e5a3c-2c43-4f6e-9d1e-7a1f0c0d2024")
KEDIRI = "35.71"


def demo_id(name: str) -> uuid.UUID:
    """A stable id for a named demo entity."""
    return uuid.uuid5(_NS, name)


def _org(code: str, name: str) -> dict[str, str]:
    return {"code": code, "name": name}


WANTANNAS = _org("WANTANNAS", "Setjen Wantannas")
KPU_KEDIRI = _org("KPU", "KPU Kota Kediri")
BAWASLU_KEDIRI = _org("BAWASLU", "Bawaslu Kota Kediri")
KESBANGPOL_KEDIRI = _org("KESBANGPOL", "Kesbangpol Kota Kediri")

KEDIRI_HEARING: list[tuple[str, dict[str, Any]]] = [
    (
        "HearingScheduled",
        {
            "region_code": KEDIRI,
            "title": "Dengar pendapat persiapan Pemilu dan Pemilihan 2024",
            "agenda": "Dengar pendapat mengenai persiapan pemilu dan pemilihan 2024 dari KPU maupun "
            "Bawaslu selaku penyelenggara",
            "venue": "Ruang Joyoboyo",
            "scheduled_at": "2021-10-26T09:00:00+07:00",
            "convened_by": WANTANNAS,
            "host_organization": KESBANGPOL_KEDIRI,
        },
    ),
    (
        "ParticipantsRecorded",
        {
            "participants": [
                {
                    "name": "Brigjen Pol Drs. Ismail Bafadal MH",
                    "role": "Deputi Politik dan Strategi",
                    "organization": WANTANNAS,
                },
                {
                    "name": "Kepala Kesbangpol Kota Kediri",
                    "role": "Pembuka acara",
                    "organization": KESBANGPOL_KEDIRI,
                },
                {"name": "Ketua KPU Kota Kediri", "role": "Ketua", "organization": KPU_KEDIRI},
                {"name": "Pusporini Endah Palupi", "role": "Anggota", "organization": KPU_KEDIRI},
                {"name": "Wahyudi", "role": "Divisi SDM dan Parmas", "organization": KPU_KEDIRI},
                {
                    "name": "Sekretaris KPU Kota Kediri",
                    "role": "Sekretaris",
                    "organization": KPU_KEDIRI,
                },
                {"name": "Mansur, ST", "role": "Ketua", "organization": BAWASLU_KEDIRI},
            ]
        },
    ),
    (
        "StatementRecorded",
        {
            "speaker": "Brigjen Pol Drs. Ismail Bafadal MH",
            "organization": WANTANNAS,
            "text": "Permasalahan yang dihadapi oleh penyelenggara adalah hal penting yang perlu "
            "dijaring dan ditemukan solusinya sehingga pelaksanaan Pemilu dan Pemilihan 2024 "
            "nanti bisa berjalan sesuai dengan harapan.",
            "quote": "Tugas kami disini adalah mendengarkan permasalahan yang dihadapi oleh "
            "Kabupaten/Kota dalam persiapan pelaksanaan Pemilu dan Pemilihan 2024 yang "
            "kemudian kami rekomendasikan kepada Presiden",
        },
    ),
    (
        "StatementRecorded",
        {
            "speaker": "Pusporini Endah Palupi",
            "organization": KPU_KEDIRI,
            "text": "Dalam rangka mempersiapkan pemilu dan pemilihan 2024, KPU RI maupun KPU Provinsi "
            "Jatim telah melakukan berbagai upaya peningkatan sumber daya manusia melalui "
            "webinar peningkatan kapasitas lembaga dan SDM, Sharing Knowledge antar KPU "
            "Kab/Kota, serta program rutin kelas teknis menyongsong pemilu 2024.",
            "quote": "Dan KPU Kota Kediri aktif mengikuti kegiatan tersebut",
        },
    ),
    (
        "StatementRecorded",
        {
            "speaker": "Pusporini Endah Palupi",
            "organization": KPU_KEDIRI,
            "text": "Persoalan yang dihadapi adalah kekurangan jumlah personil di intern KPU Kota "
            "Kediri, regulasi yang menaungi keselamatan kerja badan adhoc, serta peningkatan "
            "beban kerja badan adhoc yang perlu diimbangi dengan kenaikan honorariumnya.",
            "quote": "Minimal sesuai UMR karena seperti KPPS dengan masa 1 bulan harus bekerja ekstra.",
        },
    ),
    (
        "StatementRecorded",
        {
            "speaker": "Mansur, ST",
            "organization": BAWASLU_KEDIRI,
            "text": "Permasalahan utama dalam pelaksanaan pengawasan pemilihan adalah diperlukan "
            "integrasi regulasi pemilu dan pemilihan sehingga tidak ambigu dan masa kampanye "
            "yang cukup panjang sehingga rentang waktu pengawasan pelaksanaan kampanye sangat "
            "panjang.",
            "quote": "Kami berharap ada peninjauan kembali regulasi pelaksanaan kampanye, serta "
            "persyaratan usia minimal saksi menjadi 17 th agar lebih mudah dalam perekrutan",
        },
    ),
    (
        "StatementRecorded",
        {
            "speaker": "Wahyudi",
            "organization": KPU_KEDIRI,
            "text": "Penggunaan teknologi informasi serta media sosial dalam menyasar pemilih milenial "
            "dan gen Z.",
            "quote": "KPU dalam program pendidikan pemilih serta sosialisasi pemilu dan pemilihan "
            "selama ini telah menggunakan media sosial dan website, apalagi dimasa pandemic "
            "ini, dan hal tersebut dipantau oleh KPU RI dan KPU Provinsi Jatim melalui "
            "pelaporan jumlah konten yang diunggah tiap bulannya",
        },
    ),
    (
        "HearingHeld",
        {
            "held_at": "2021-10-26T09:00:00+07:00",
            "opened_by": "Kepala Kesbangpol Kota Kediri",
            "summary": "Setjen Wantannas mendengarkan permasalahan KPU dan Bawaslu Kota Kediri dalam "
            "persiapan Pemilu dan Pemilihan 2024 untuk direkomendasikan kepada Presiden.",
        },
    ),
]

# (key, organization, category, severity, title, description)
KEDIRI_ISSUES: list[tuple[str, dict[str, str], str, int, str, str]] = [
    (
        "personil",
        KPU_KEDIRI,
        "personnel",
        3,
        "Kekurangan jumlah personil di intern KPU",
        "Selain beban persiapan, KPU Kota Kediri menghadapi kekurangan jumlah personil di intern "
        "KPU Kota Kediri.",
    ),
    (
        "keselamatan",
        KPU_KEDIRI,
        "adhoc_bodies_welfare_safety",
        4,
        "Regulasi keselamatan kerja badan adhoc",
        "Perlu regulasi yang menaungi keselamatan kerja badan adhoc.",
    ),
    (
        "honorarium",
        KPU_KEDIRI,
        "budget_honorarium",
        4,
        "Honorarium badan adhoc minimal sesuai UMR",
        "Peningkatan beban kerja badan adhoc perlu diimbangi kenaikan honorariumnya, minimal sesuai "
        "UMR karena seperti KPPS dengan masa 1 bulan harus bekerja ekstra.",
    ),
    (
        "integrasi",
        BAWASLU_KEDIRI,
        "regulation",
        4,
        "Integrasi regulasi pemilu dan pemilihan",
        "Diperlukan integrasi regulasi pemilu dan pemilihan sehingga tidak ambigu.",
    ),
    (
        "kampanye",
        BAWASLU_KEDIRI,
        "supervision",
        3,
        "Masa kampanye panjang memperpanjang rentang pengawasan",
        "Masa kampanye yang cukup panjang sehingga rentang waktu pengawasan pelaksanaan kampanye "
        "sangat panjang; perlu peninjauan kembali regulasi pelaksanaan kampanye.",
    ),
    (
        "saksi",
        BAWASLU_KEDIRI,
        "regulation",
        2,
        "Usia minimal saksi menjadi 17 tahun",
        "Persyaratan usia minimal saksi menjadi 17 th agar lebih mudah dalam perekrutan.",
    ),
    (
        "medsos",
        KPU_KEDIRI,
        "technology_social_media",
        2,
        "Media sosial untuk pemilih milenial dan gen Z",
        "Penggunaan teknologi informasi serta media sosial dalam pendidikan pemilih dan sosialisasi "
        "untuk menyasar pemilih milenial dan gen Z.",
    ),
]

# Variations of problems heard across the country, for the generated hearings.
TEMPLATES: list[tuple[str, str, int, str, str]] = [
    (
        "KPU",
        "budget_honorarium",
        4,
        "Honorarium KPPS minimal sesuai UMR",
        "Honorarium badan adhoc dan KPPS perlu dinaikkan minimal sesuai UMR karena beban kerja "
        "yang bertambah.",
    ),
    (
        "KPU",
        "budget_honorarium",
        3,
        "Kenaikan honorarium badan adhoc",
        "Beban kerja badan adhoc meningkat sehingga honorariumnya perlu disesuaikan dengan UMR.",
    ),
    (
        "KPU",
        "adhoc_bodies_welfare_safety",
        5,
        "Jaminan keselamatan kerja petugas KPPS",
        "Perlu regulasi dan asuransi yang menjamin keselamatan kerja badan adhoc setelah banyak "
        "petugas KPPS kelelahan.",
    ),
    (
        "KPU",
        "personnel",
        3,
        "Kekurangan personil sekretariat KPU",
        "Jumlah personil sekretariat KPU kabupaten/kota tidak sebanding dengan beban tahapan.",
    ),
    (
        "BAWASLU",
        "regulation",
        4,
        "Integrasi regulasi pemilu dan pemilihan serentak",
        "Regulasi pemilu dan pemilihan perlu diintegrasikan agar tidak ambigu bagi pengawas.",
    ),
    (
        "BAWASLU",
        "supervision",
        3,
        "Rentang pengawasan masa kampanye terlalu panjang",
        "Masa kampanye yang panjang membuat rentang waktu pengawasan kampanye sangat panjang.",
    ),
    (
        "BAWASLU",
        "regulation",
        2,
        "Batas usia minimal saksi",
        "Usia minimal saksi sebaiknya 17 tahun agar perekrutan saksi lebih mudah.",
    ),
    (
        "KPU",
        "technology_social_media",
        2,
        "Sosialisasi melalui media sosial",
        "Media sosial dan website dipakai untuk menyasar pemilih milenial dan gen Z.",
    ),
    (
        "KPU",
        "voter_education_participation",
        3,
        "Partisipasi pemilih pemula rendah",
        "Pendidikan pemilih bagi pemilih pemula perlu diperkuat untuk menaikkan partisipasi.",
    ),
    (
        "KPU",
        "logistics",
        4,
        "Distribusi logistik ke daerah terpencil",
        "Distribusi logistik pemilu ke desa terpencil dan pulau kecil rawan terlambat.",
    ),
    (
        "KESBANGPOL",
        "security",
        3,
        "Potensi konflik antar pendukung",
        "Kerawanan konflik antar pendukung calon perlu diantisipasi bersama aparat keamanan.",
    ),
    (
        "BAWASLU",
        "campaign",
        3,
        "Kampanye hitam di media sosial",
        "Penyebaran kampanye hitam dan hoaks di media sosial sulit diawasi.",
    ),
]


class DemoTokens(msgspec.Struct, kw_only=True):
    """The demo bearer tokens, by role."""

    regional: str
    national: str
    auditor: str
    admin: str


DEMO_ORIGIN = Origin(request_id="demo")


def _principal(name: str, role: str, regions: tuple[str, ...] = ()) -> Principal:
    return Principal(token_id="demo", name=name, role=role, regions=regions)  # type: ignore[arg-type]


async def _write(
    writes: WritePath, who: Principal, sid: str, events: list[tuple[str, Any]], name: str
) -> None:
    proposed = [
        Proposed(type=t, data=msgspec.json.encode(d), id=demo_id(f"{name}/{i}"))
        for i, (t, d) in enumerate(events)
    ]
    await writes.write(who, sid, proposed, "any", DEMO_ORIGIN)


async def load_demo(writes: WritePath, tokens: TokenService, home: Path) -> bool:
    """Load the demo data set unless it is there; True if it was loaded now."""
    kediri_hearing = demo_id("hearing/kediri")
    if await writes.store.stream_version(f"hearing-{kediri_hearing}") > 0:
        return False
    regions = writes.regions
    national = _principal("Setjen Wantannas", "national")
    kpu = _principal("KPU Kota Kediri", "regional", (KEDIRI,))
    bawaslu = _principal("Bawaslu Kota Kediri", "regional", (KEDIRI,))
    await _write(writes, national, f"hearing-{kediri_hearing}", KEDIRI_HEARING, "hearing/kediri")
    kediri_issues: dict[str, uuid.UUID] = {}
    for key, org, category, severity, title, description in KEDIRI_ISSUES:
        iid = demo_id(f"issue/kediri/{key}")
        kediri_issues[key] = iid
        who = bawaslu if org["code"] == "BAWASLU" else kpu
        await _write(
            writes,
            who,
            f"issue-{iid}",
            [
                (
                    "IssueRaised",
                    {
                        "region_code": KEDIRI,
                        "hearing_id": str(kediri_hearing),
                        "raised_by": org,
                        "category": category,
                        "title": title,
                        "description": description,
                        "severity": severity,
                        "raised_at": "2021-10-26T10:00:00+07:00",
                    },
                )
            ],
            f"issue/kediri/{key}",
        )
    # A correction, as offices make them: the severity was typed wrong.
    await _write(
        writes,
        kpu,
        f"issue-{kediri_issues['honorarium']}",
        [
            (
                "IssueCorrected",
                {"severity": 5, "reason": "Salah ketik: KPU menilai sangat mendesak"},
            )
        ],
        "issue/kediri/honorarium/corrected",
    )
    generated = await _generate(writes, regions, national)
    honorarium = [kediri_issues["honorarium"], *generated.get("budget_honorarium", [])[:12]]
    await _write(
        writes,
        national,
        f"recommendation-{demo_id('rec/honorarium')}",
        [
            (
                "RecommendationDrafted",
                {
                    "title": "Standar honorarium KPPS minimal UMR",
                    "body": "Setjen Wantannas merekomendasikan kepada Presiden agar honorarium badan "
                    "adhoc, khususnya KPPS, ditetapkan minimal sesuai UMR setempat mengingat "
                    "beban kerja ekstra selama masa tugas.",
                    "addressee": "Presiden",
                    "issue_ids": [str(i) for i in honorarium],
                },
            ),
        ],
        "rec/honorarium",
    )
    safety = generated.get("adhoc_bodies_welfare_safety", [])[:8]
    await _write(
        writes,
        national,
        f"recommendation-{demo_id('rec/keselamatan')}",
        [
            (
                "RecommendationDrafted",
                {
                    "title": "Perlindungan keselamatan kerja badan adhoc",
                    "body": "Regulasi dan jaminan asuransi keselamatan kerja bagi badan adhoc pemilu.",
                    "addressee": "Presiden",
                    "issue_ids": [str(i) for i in [kediri_issues["keselamatan"], *safety]],
                },
            ),
            ("RecommendationApproved", {"approved_by": "Sekretaris Jenderal Wantannas"}),
            (
                "RecommendationSubmitted",
                {"submitted_to": "Presiden", "submitted_at": "2022-01-15T10:00:00+07:00"},
            ),
            # Progress, but no answer: overdue since its default due date (30 days).
            (
                "ProgressReported",
                {
                    "percent": 30,
                    "note": "Kemnaker menyusun skema jaminan kecelakaan kerja badan adhoc.",
                    "reported_at": "2022-02-01T10:00:00+07:00",
                },
            ),
        ],
        "rec/keselamatan",
    )
    regulation = generated.get("regulation", [])[:6]
    if regulation:
        await _write(
            writes,
            national,
            f"recommendation-{demo_id('rec/regulasi')}",
            [
                (
                    "RecommendationDrafted",
                    {
                        "title": "Harmonisasi jadwal tahapan Pemilu dan Pemilihan 2024",
                        "body": "Setjen Wantannas merekomendasikan penyelarasan regulasi tahapan "
                        "yang beririsan antara Pemilu dan Pemilihan 2024.",
                        "addressee": "Menteri Dalam Negeri",
                        "issue_ids": [str(i) for i in regulation],
                    },
                ),
                ("RecommendationApproved", {"approved_by": "Sekretaris Jenderal Wantannas"}),
                (
                    "RecommendationSubmitted",
                    {
                        "submitted_to": "Menteri Dalam Negeri",
                        "submitted_at": "2022-02-01T10:00:00+07:00",
                        "response_due_at": "2022-03-15T16:00:00+07:00",
                    },
                ),
                (
                    "ProgressReported",
                    {
                        "percent": 50,
                        "note": "Rapat koordinasi Kemendagri, KPU dan Bawaslu.",
                        "evidence_url": "https://www.kemendagri.go.id/",
                        "reported_at": "2022-02-20T14:00:00+07:00",
                    },
                ),
                (
                    "ResponseRecorded",
                    {
                        "responder": "Kementerian Dalam Negeri",
                        "text": "Diterima sebagian: jadwal diselaraskan, pendanaan dibahas terpisah.",
                        "received_at": "2022-03-10T09:00:00+07:00",
                        "outcome": "partly_accepted",
                    },
                ),
            ],
            "rec/regulasi",
        )
    issued = DemoTokens(
        regional=(
            await tokens.issue(role="regional", name="Demo KPU Kota Kediri", regions=[KEDIRI])
        ).token,
        national=(await tokens.issue(role="national", name="Demo Setjen Wantannas")).token,
        auditor=(await tokens.issue(role="auditor", name="Demo auditor")).token,
        admin=(await tokens.issue(role="admin", name="Demo admin")).token,
    )
    save_tokens(home, issued)
    log.info("demo.loaded", generated_issues=sum(len(v) for v in generated.values()))
    return True


async def _generate(
    writes: WritePath, regions: Regions, national: Principal
) -> dict[str, list[uuid.UUID]]:
    """Hearings and issues in 72 regencies of 24 provinces, from the templates above."""
    rng = random.Random(2024)
    provinces = sorted(p.code for p in regions.provinces())
    chosen_provinces = rng.sample(provinces, 24)
    by_category: dict[str, list[uuid.UUID]] = {}
    start = datetime(2021, 11, 1, 9, 0, tzinfo=UTC)
    n = 0
    # Hearings start at 09:00 local time: WIB in Jawa, WITA in Sulawesi, WIT in Maluku.
    for pcode in chosen_provinces:
        children = sorted(r.code for r in regions.children(pcode))
        for code in rng.sample(children, min(3, len(children))):
            region = regions.get(code)
            assert region is not None
            hid = demo_id(f"hearing/{code}")
            day = start.date() + timedelta(days=3 * n)
            when = datetime.combine(day, time(9), zone_of(code))
            n += 1
            host = _org("KESBANGPOL", f"Kesbangpol {region.name}")
            events: list[tuple[str, Any]] = [
                (
                    "HearingScheduled",
                    {
                        "region_code": code,
                        "title": f"Dengar pendapat persiapan Pemilu dan Pemilihan 2024 di {region.name}",
                        "agenda": "Persiapan pelaksanaan pemilu dan pemilihan 2024",
                        "venue": f"Kantor Kesbangpol {region.name}",
                        "scheduled_at": when.isoformat(),
                        "convened_by": WANTANNAS,
                        "host_organization": host,
                    },
                )
            ]
            upcoming = when > start + timedelta(days=180)
            if not upcoming:
                events.append(
                    (
                        "HearingHeld",
                        {
                            "held_at": when.isoformat(),
                            "opened_by": f"Kepala Kesbangpol {region.name}",
                            "summary": f"KPU dan Bawaslu {region.name} menyampaikan permasalahan.",
                        },
                    )
                )
            await _write(writes, national, f"hearing-{hid}", events, f"hearing/{code}")
            if upcoming:
                continue
            office = _principal(f"Kantor {region.name}", "regional", (code,))
            for t in rng.sample(TEMPLATES, rng.randint(2, 4)):
                org_code, category, severity, title, description = t
                iid = demo_id(f"issue/{code}/{title}")
                org = _org(
                    org_code, f"{org_code.title() if org_code != 'KPU' else 'KPU'} {region.name}"
                )
                await _write(
                    writes,
                    office,
                    f"issue-{iid}",
                    [
                        (
                            "IssueRaised",
                            {
                                "region_code": code,
                                "hearing_id": str(hid),
                                "raised_by": org,
                                "category": category,
                                "title": title,
                                "description": description,
                                "severity": max(1, min(5, severity + rng.choice((-1, 0, 0, 1)))),
                                "raised_at": (when + timedelta(hours=2)).isoformat(),
                            },
                        )
                    ],
                    f"issue/{code}/{title}",
                )
                by_category.setdefault(category, []).append(iid)
    return by_category


def tokens_path(home: Path) -> Path:
    """Where the demo tokens are kept."""
    return home / "demo-tokens.json"


def save_tokens(home: Path, tokens: DemoTokens) -> None:
    """Write the demo tokens readable by the owner only."""
    home.mkdir(parents=True, exist_ok=True)
    path = tokens_path(home)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(msgspec.json.encode(tokens))


def read_tokens(home: Path) -> DemoTokens | None:
    """The saved demo tokens, if any."""
    path = tokens_path(home)
    if not path.exists():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=DemoTokens)
    except (msgspec.DecodeError, json.JSONDecodeError):
        return None


def banner(tokens: DemoTokens) -> str:
    """The demo tokens as shown at start-up."""
    return "\n".join(
        [
            "Demo tokens (also in COORD_HOME/demo-tokens.json):",
            f"  regional (35.71 Kota Kediri): {tokens.regional}",
            f"  national:                     {tokens.national}",
            f"  auditor:                      {tokens.auditor}",
            f"  admin:                        {tokens.admin}",
        ]
    )
