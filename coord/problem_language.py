"""Problems in Indonesian for clients that ask (``Accept-Language: id``), English otherwise.

The title is translated; a refused event's detail is the rule's Indonesian statement
(the English detail, which names the values of this occurrence, stays in ``detail_en``).
Other details stay English. ``Content-Language`` says which language the body is in.
"""

from __future__ import annotations

from typing import Final

from coord.problems import Problem

#: English title -> Indonesian
TITLES_ID: Final[dict[str, str]] = {
    "Invalid request": "Permintaan tidak valid",
    "Malformed request": "Permintaan rusak",
    "Forbidden": "Tidak diizinkan",
    "Not found": "Tidak ditemukan",
    "Unauthorized": "Tidak terautentikasi",
    "State conflict": "Konflik keadaan",
    "Domain rule violated": "Aturan domain dilanggar",
    "Version conflict": "Konflik versi",
    "Duplicate event id": "Id peristiwa sudah dipakai",
    "Stream id taken": "Id stream sudah dipakai node lain",
    "Internal server error": "Kesalahan internal server",
    "Service unavailable": "Layanan tidak tersedia",
    "Unsupported media type": "Jenis media tidak didukung",
    "Too many requests": "Terlalu banyak permintaan",
    "Too many open feeds": "Terlalu banyak feed terbuka",
    "Projection behind": "Tampilan belum mutakhir",
    "View took too long": "Tampilan terlalu lama",
    "Request timeout": "Permintaan melewati batas waktu",
    "Gateway timeout": "Gateway melewati batas waktu",
    "Sequencing delayed": "Pengurutan tertunda",
    "Write belongs to another node": "Penulisan milik node lain",
    "Rebuild running": "Pembangunan ulang sedang berjalan",
    "Method Not Allowed": "Metode tidak diizinkan",
    "Not Found": "Tidak ditemukan",
    "Request Entity Too Large": "Permintaan terlalu besar",
}

#: rule -> what it says, in Indonesian (events/domain/rules.py has the English)
RULES_ID: Final[dict[str, str]] = {
    "event.unknown_type": "nama jenis peristiwa tidak dikenal",
    "event.invalid": "isi peristiwa tidak sesuai skema",
    "event.wrong_stream": "jenis peristiwa ini bukan milik stream tersebut",
    "region.unknown": "kode wilayah harus ada dalam registri Kemendagri",
    "hearing.not_scheduled": "stream dengar pendapat harus diawali HearingScheduled",
    "hearing.already_scheduled": "HearingScheduled hanya mengawali stream baru",
    "hearing.cancelled": "tidak ada yang dapat dicatat pada dengar pendapat yang dibatalkan",
    "hearing.already_held": "dengar pendapat yang sudah terlaksana tidak dapat dilaksanakan, "
    "dipindah atau dibatalkan lagi",
    "hearing.held_before_scheduled": "held_at paling awal sehari sebelum waktu yang dijadwalkan",
    "hearing.status_unchanged": "koreksi status harus mengubah status",
    "hearing.held_details_required": "koreksi status menjadi terlaksana menyertakan held_at, "
    "opened_by dan summary",
    "hearing.held_details_not_allowed": "hanya koreksi status menjadi terlaksana yang "
    "menyertakan held_at, opened_by atau summary",
    "hearing.participant_unknown": "participant_index harus menunjuk peserta dengar pendapat",
    "hearing.participant_removed": "peserta hanya dapat dihapus sekali",
    "hearing.statement_unknown": "statement_index harus menunjuk pernyataan dengar pendapat",
    "hearing.statement_retracted": "pernyataan yang ditarik tidak dikoreksi atau ditarik lagi",
    "issue.not_raised": "stream isu harus diawali IssueRaised",
    "issue.already_raised": "IssueRaised hanya mengawali stream baru",
    "issue.hearing_unknown": "dengar pendapat isu ini harus ada di wilayahnya",
    "issue.hearing_cancelled": "isu tidak dapat diajukan pada dengar pendapat yang dibatalkan",
    "issue.withdrawn": "tidak ada yang menyusul penarikan isu",
    "issue.category_unchanged": "koreksi kategori harus mengubah kategori",
    "issue.raised_before_hearing": "isu tidak diajukan sebelum dengar pendapatnya",
    "issue.national_needs_hearing": "isu yang dicatat dengan token nasional menyebut "
    "dengar pendapatnya (hearing_id)",
    "correction.empty": "koreksi menyebut paling sedikit satu isian yang diubah",
    "correction.unchanged": "setiap isian yang dikoreksi harus berubah nilainya",
    "correction.not_recorder": "catatan dikoreksi oleh jenis kantor yang mencatatnya "
    "(daerah atau nasional)",
    "time.in_future": "waktu efektif tidak lebih dari 10 menit setelah saat ini",
    "recommendation.not_drafted": "stream rekomendasi harus diawali RecommendationDrafted",
    "recommendation.already_drafted": "RecommendationDrafted hanya mengawali stream baru",
    "recommendation.issue_unknown": "isu yang dirujuk harus ada",
    "recommendation.issue_withdrawn": "isu yang ditarik tidak dapat dirujuk",
    "recommendation.issue_duplicate": "isu disebut dua kali dalam satu peristiwa",
    "recommendation.issue_already_cited": "isu sudah dirujuk",
    "recommendation.issue_not_cited": "hanya isu yang sedang dirujuk yang dapat dilepas",
    "recommendation.empty_revision": "revisi harus mengubah sesuatu",
    "recommendation.no_issues": "rekomendasi harus merujuk isu sebelum disetujui",
    "recommendation.already_approved": "rekomendasi sudah disetujui",
    "recommendation.not_approved": "rekomendasi disetujui sebelum diajukan",
    "recommendation.already_submitted": "rekomendasi yang sudah diajukan tidak dapat direvisi, "
    "dirujukkan ulang, disetujui atau diajukan lagi",
    "recommendation.not_submitted": "tanggapan atau laporan kemajuan menyusul pengajuan",
    "recommendation.due_before_submission": "response_due_at harus setelah submitted_at",
    "recommendation.closed": "tidak ada yang menyusul penutupan rekomendasi",
    "token.already_issued": "id token hanya diterbitkan sekali",
    "token.unknown": "token harus sudah diterbitkan",
    "token.already_revoked": "token hanya dicabut sekali",
    "token.regions_required": "token daerah menyebut paling sedikit satu wilayah",
    "token.regions_not_allowed": "hanya token daerah yang membawa wilayah",
    "token.expiry_past": "expires_at harus setelah saat ini",
    "token.expiry_too_far": "expires_at paling lama 2 tahun (731 hari) ke depan",
    "token.name_taken": "nama token unik di antara token yang masih berlaku "
    "(belum dicabut dan belum kedaluwarsa)",
    "cluster.merge_self": "klaster tidak digabungkan ke dirinya sendiri",
    "cluster.duplicate": "sebuah klaster tercantum dua kali dalam satu peristiwa",
    "cluster.issue_duplicate": "sebuah isu tercantum dua kali dalam satu peristiwa",
    "cluster.issue_unknown": "isu yang dipindahkan harus ada",
    "cluster.issue_withdrawn": "isu yang sudah ditarik tidak dipindahkan",
    "cluster.name_unchanged": "nama baru harus berbeda dari nama klaster sekarang",
}


def wants_indonesian(accept_language: str) -> bool:
    """Does an ``Accept-Language`` header prefer Indonesian (``id``, ``in``) to English?"""
    best: tuple[float, str] = (0.0, "en")
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in ("id", "in", "en"):
            continue
        q = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
        if q > best[0]:
            best = (q, "en" if primary == "en" else "id")
    return best[1] == "id"


def in_indonesian(problem: Problem) -> Problem:
    """The same problem with its title (and a rule's detail) in Indonesian."""
    extra = dict(problem.extra)
    detail = problem.detail
    rule = extra.get("rule")
    if isinstance(rule, str) and rule in RULES_ID:
        extra["detail_en"] = problem.detail
        detail = RULES_ID[rule]
    headers = {**problem.headers, "Content-Language": "id"}
    return Problem(
        problem.status,
        problem.slug,
        TITLES_ID.get(problem.title, problem.title),
        detail,
        headers=headers,
        **extra,
    )
