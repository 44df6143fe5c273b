"""Why the console refused a form, in the reader's language, one message per domain rule.

The write path names the rule it enforced (`events/domain/rules.py` RULES, carried as the
problem's `rule`); a person reads that rule's sentence here instead of the API's English
detail. A refusal without a rule (a malformed value, a version conflict) keeps the
generic message for its status with the technical detail after it.
"""

from __future__ import annotations

from typing import Final

from coord.console.i18n import Translator
from coord.problems import Problem

#: rule name -> (Indonesian, English). tests/console/test_refusals.py checks every rule in
#: events.domain.rules.RULES has an entry.
RULE_MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "event.unknown_type": (
        "Jenis catatan ini tidak dikenal.",
        "This kind of record is not known.",
    ),
    "event.invalid": (
        "Isian tidak sesuai dengan bentuk catatan ini.",
        "The input does not match this kind of record.",
    ),
    "event.wrong_stream": (
        "Catatan ini tidak dapat dibuat di halaman ini.",
        "This record does not belong on this page.",
    ),
    "region.unknown": (
        "Kode wilayah tidak ada dalam daftar Kemendagri.",
        "The region code is not in the Kemendagri register.",
    ),
    "hearing.not_scheduled": (
        "Dengar pendapat ini belum dijadwalkan.",
        "This hearing has not been scheduled.",
    ),
    "hearing.already_scheduled": (
        "Dengar pendapat ini sudah dijadwalkan.",
        "This hearing is already scheduled.",
    ),
    "hearing.cancelled": (
        "Dengar pendapat ini dibatalkan; tidak ada lagi yang dapat dicatat.",
        "This hearing was cancelled; nothing more can be recorded on it.",
    ),
    "hearing.already_held": (
        "Dengar pendapat ini sudah terlaksana; tidak dapat dipindah, dibatalkan, "
        "atau dilaksanakan lagi.",
        "This hearing was already held; it cannot be moved, cancelled or held again.",
    ),
    "hearing.held_before_scheduled": (
        "Waktu pelaksanaan paling awal satu hari sebelum waktu yang dijadwalkan.",
        "The time held is at most one day before the scheduled time.",
    ),
    "hearing.status_unchanged": (
        "Koreksi status harus mengubah status.",
        "A status correction must change the status.",
    ),
    "hearing.held_details_required": (
        "Koreksi ke status terlaksana memerlukan waktu, pembuka, dan ringkasan.",
        "A correction to held needs the time, who opened it and a summary.",
    ),
    "hearing.held_details_not_allowed": (
        "Waktu, pembuka, dan ringkasan hanya diisi untuk koreksi ke status terlaksana.",
        "Time, opener and summary are only given for a correction to held.",
    ),
    "hearing.participant_unknown": (
        "Peserta itu tidak tercatat pada dengar pendapat ini.",
        "That participant is not recorded for this hearing.",
    ),
    "hearing.participant_removed": (
        "Peserta itu sudah dihapus.",
        "That participant was already removed.",
    ),
    "hearing.statement_unknown": (
        "Pernyataan itu tidak tercatat pada dengar pendapat ini.",
        "That statement is not recorded for this hearing.",
    ),
    "hearing.statement_retracted": (
        "Pernyataan yang ditarik tidak dapat dikoreksi atau ditarik lagi.",
        "A retracted statement cannot be corrected or retracted again.",
    ),
    "issue.not_raised": ("Isu ini belum diajukan.", "This issue has not been raised."),
    "issue.already_raised": ("Isu ini sudah diajukan.", "This issue was already raised."),
    "issue.hearing_unknown": (
        "Dengar pendapat itu tidak ada di wilayah ini.",
        "That hearing does not exist in this region.",
    ),
    "issue.hearing_cancelled": (
        "Isu tidak dapat diajukan pada dengar pendapat yang dibatalkan.",
        "Issues cannot be raised at a cancelled hearing.",
    ),
    "issue.withdrawn": (
        "Isu ini sudah ditarik; tidak ada lagi yang dapat dicatat.",
        "This issue was withdrawn; nothing more can be recorded on it.",
    ),
    "issue.category_unchanged": (
        "Koreksi kategori harus mengubah kategori.",
        "A category correction must change the category.",
    ),
    "issue.raised_before_hearing": (
        "Isu tidak dapat diajukan sebelum dengar pendapatnya.",
        "An issue cannot be raised before its hearing.",
    ),
    "correction.empty": (
        "Koreksi harus mengubah paling sedikit satu isian.",
        "A correction must change at least one field.",
    ),
    "correction.unchanged": (
        "Setiap isian yang dikoreksi harus berubah nilainya.",
        "Every corrected field must change its value.",
    ),
    "correction.not_recorder": (
        "Catatan dikoreksi oleh jenis kantor yang mencatatnya (daerah atau nasional).",
        "A record is corrected by the kind of office that recorded it (regional or national).",
    ),
    "time.in_future": (
        "Waktu itu masih di masa depan (paling lambat sekarang ditambah 10 menit).",
        "That time is in the future (at most now plus 10 minutes).",
    ),
    "recommendation.not_drafted": (
        "Rekomendasi ini belum disusun.",
        "This recommendation has not been drafted.",
    ),
    "recommendation.already_drafted": (
        "Rekomendasi ini sudah disusun.",
        "This recommendation was already drafted.",
    ),
    "recommendation.issue_unknown": (
        "Isu yang dikutip tidak ditemukan.",
        "A cited issue does not exist.",
    ),
    "recommendation.issue_withdrawn": (
        "Isu yang sudah ditarik tidak dapat dikutip.",
        "A withdrawn issue cannot be cited.",
    ),
    "recommendation.issue_duplicate": (
        "Satu isu tercantum dua kali.",
        "An issue is listed twice.",
    ),
    "recommendation.issue_already_cited": (
        "Isu itu sudah dikutip.",
        "That issue is already cited.",
    ),
    "recommendation.issue_not_cited": (
        "Hanya isu yang sedang dikutip yang dapat dicabut kutipannya.",
        "Only an issue that is currently cited can be uncited.",
    ),
    "recommendation.empty_revision": (
        "Revisi harus mengubah sesuatu.",
        "A revision must change something.",
    ),
    "recommendation.no_issues": (
        "Rekomendasi harus mengutip paling sedikit satu isu sebelum disetujui.",
        "A recommendation must cite at least one issue before it is approved.",
    ),
    "recommendation.already_approved": (
        "Rekomendasi ini sudah disetujui.",
        "This recommendation is already approved.",
    ),
    "recommendation.not_approved": (
        "Rekomendasi harus disetujui sebelum diajukan.",
        "A recommendation is approved before it is submitted.",
    ),
    "recommendation.already_submitted": (
        "Rekomendasi yang sudah diajukan tidak dapat direvisi, diubah kutipannya, "
        "disetujui, atau diajukan lagi.",
        "A submitted recommendation cannot be revised, re-cited, approved or submitted again.",
    ),
    "recommendation.not_submitted": (
        "Tanggapan dicatat setelah rekomendasi diajukan.",
        "A response is recorded after the recommendation is submitted.",
    ),
    "recommendation.closed": (
        "Rekomendasi ini sudah ditutup; tidak ada lagi yang dapat dicatat.",
        "This recommendation is closed; nothing more can be recorded on it.",
    ),
    "token.already_issued": ("Token ini sudah diterbitkan.", "This token was already issued."),
    "token.unknown": ("Token itu tidak pernah diterbitkan.", "That token was never issued."),
    "token.already_revoked": ("Token ini sudah dicabut.", "This token was already revoked."),
    "token.regions_required": (
        "Token kantor daerah harus menyebut paling sedikit satu wilayah.",
        "A regional office token names at least one region.",
    ),
    "token.regions_not_allowed": (
        "Hanya token kantor daerah yang memuat wilayah.",
        "Only regional office tokens carry regions.",
    ),
    "token.expiry_past": (
        "Masa berlaku token harus berakhir setelah saat ini.",
        "A token's expiry must be later than now.",
    ),
    "token.expiry_too_far": (
        "Masa berlaku token paling lama 2 tahun.",
        "A token expires at most 2 years ahead.",
    ),
    "token.name_taken": (
        "Nama itu sudah dipakai token lain yang masih berlaku.",
        "That name is already used by another live token.",
    ),
    "recommendation.due_before_submission": (
        "Batas waktu tanggapan tidak boleh sebelum tanggal penyampaian.",
        "The response due date cannot be before the submission date.",
    ),
    "issue.national_needs_hearing": (
        "Isu yang dicatat oleh staf nasional harus menyebut dengar pendapatnya.",
        "An issue recorded by national staff must name its hearing.",
    ),
    "cluster.merge_self": (
        "Kelompok masalah tidak dapat digabungkan dengan dirinya sendiri.",
        "A problem group cannot be merged into itself.",
    ),
    "cluster.duplicate": (
        "Satu kelompok masalah dipilih dua kali.",
        "The same problem group was chosen twice.",
    ),
    "cluster.issue_duplicate": (
        "Satu isu dipilih dua kali.",
        "The same issue was chosen twice.",
    ),
    "cluster.issue_unknown": (
        "Isu yang hendak dipindahkan tidak ditemukan.",
        "The issue to move was not found.",
    ),
    "cluster.issue_withdrawn": (
        "Isu yang sudah ditarik tidak dapat dipindahkan.",
        "A withdrawn issue cannot be moved.",
    ),
    "cluster.name_unchanged": (
        "Nama baru sama dengan nama kelompok sekarang.",
        "The new name is the same as the group's current name.",
    ),
}


def refusal(t: Translator, problem: Problem) -> str:
    """The sentence a person reads for a refused form.

    A named rule gives its own sentence (the API's English detail would repeat it); any
    other refusal the status's message, with the detail that says which value was wrong.
    """
    rule = problem.extra.get("rule")
    if isinstance(rule, str) and rule in RULE_MESSAGES:
        return RULE_MESSAGES[rule][0 if t.lang == "id" else 1]
    message = t(f"form.refused.{problem.status}")
    return f"{message} ({problem.detail})" if problem.detail else message
