"""Problems in Indonesian for clients that ask (``Accept-Language: id``), English otherwise.

The title is translated, and so is the detail: a refused event's is the rule's Indonesian
statement (:data:`RULES_ID`); any other is matched against :data:`DETAILS_ID`, the
catalogue of the English details the service and msgspec write (the values they name,
such as field paths, codes and numbers, are carried over as sent); a detail the catalogue
does not know gets its problem type's general Indonesian statement
(:data:`FALLBACK_ID`), never English. Whenever the detail is replaced, the English one
stays in ``detail_en``; ``field`` and the other members are unchanged.
``Content-Language`` says which language the body is in.
"""

from __future__ import annotations

import re
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


#: what a "no <thing> <id>" detail names, in Indonesian
_THINGS_ID: Final[dict[str, str]] = {
    "recommendation": "rekomendasi",
    "recurring problem": "masalah berulang",
    "projection": "proyeksi",
    "hearing": "dengar pendapat",
    "issue": "isu",
    "region": "wilayah",
    "region with code": "wilayah dengan kode",
    "action": "aksi",
    "page for id": "halaman untuk id",
    "token": "token",
}
_THING = "|".join(sorted(map(re.escape, _THINGS_ID), key=len, reverse=True))


#: English detail (matched whole) -> Indonesian; ``{name}`` takes the named group as sent.
#: Order matters: the first match wins, so the specific patterns come first.
DETAILS_ID: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, re.DOTALL), text)
    for pattern, text in (
        # msgspec (validation of bodies and queries; its messages, version 0.18-0.19)
        (r"Expected `(?P<t>[^`]+)`, got `(?P<g>[^`]+)`", "diharapkan `{t}`, diterima `{g}`"),
        (
            r"Expected `(?P<t>[^`]+)` of length (?P<op>[<>]=?) (?P<n>\d+)",
            "diharapkan `{t}` dengan panjang {op} {n}",
        ),
        (r"Expected `(?P<t>[^`]+)` of length (?P<n>\d+)", "diharapkan `{t}` dengan panjang {n}"),
        (
            r"Expected `(?P<t>[^`]+)` that's a multiple of (?P<n>\S+)",
            "diharapkan `{t}` kelipatan {n}",
        ),
        (r"Expected `(?P<t>[^`]+)` (?P<op>[<>]=?) (?P<n>\S+)", "diharapkan `{t}` {op} {n}"),
        (
            r"Expected `(?P<t>[^`]+)` matching regex (?P<re>.+)",
            "diharapkan `{t}` yang cocok dengan pola {re}",
        ),
        (
            r"Expected `(?P<t>[^`]+)` with a timezone component",
            "diharapkan `{t}` dengan zona waktu",
        ),
        (
            r"Expected `(?P<t>[^`]+)` with no timezone component",
            "diharapkan `{t}` tanpa zona waktu",
        ),
        (r"Object missing required field `(?P<f>[^`]+)`", "isian wajib `{f}` tidak ada"),
        (r"Object contains unknown field `(?P<f>[^`]+)`", "isian `{f}` tidak dikenal"),
        (r"Invalid enum value (?P<v>.+)", "nilai {v} bukan salah satu pilihan yang diizinkan"),
        (
            r"Invalid RFC3339 encoded (?P<t>datetime|date|time)",
            "`{t}` tidak sah menurut RFC 3339",
        ),
        (r"Invalid UUID", "UUID tidak sah"),
        (r"Invalid base64 encoded string", "string base64 tidak sah"),
        (r"Invalid decimal string", "string desimal tidak sah"),
        (
            r"(?:Integer value|Number|Duration|Timestamp) (?:is )?out of range",
            "nilai di luar rentang",
        ),
        (
            r"malformed JSON: (?:JSON is malformed: )?.*\(byte (?P<b>\d+)\)",
            "JSON rusak (pada byte {b})",
        ),
        (r"malformed JSON: Input data was truncated", "JSON rusak: data terpotong"),
        (r"malformed JSON: .*", "JSON rusak"),
        # the service's own details
        (
            r"(?P<f>\S+) must be a UUID in lowercase canonical form",
            "{f} harus UUID dalam bentuk kanonis huruf kecil",
        ),
        (
            rf"(?P<thing>{_THING}) id must be a UUID in lowercase canonical form",
            "id {thing} harus UUID dalam bentuk kanonis huruf kecil",
        ),
        (
            r"(?P<f>.+) id must be a UUID in lowercase canonical form",
            "id {f} harus UUID dalam bentuk kanonis huruf kecil",
        ),
        (
            r"a stream id is `category-identifier`: 1-200 characters of (?P<c>\S+) "
            r"with a category before the first '-'",
            "id stream berbentuk `kategori-pengenal`: 1-200 karakter {c} dengan kategori "
            "sebelum '-' pertama",
        ),
        (
            r"a (?P<thing>\w+) stream id is (?P<form>`[^`]+`) with the uuid in lowercase "
            r"canonical form \(8-4-4-4-12 hex digits, e\.g\. (?P<e>`[^`]+`)\)",
            "id stream {thing} berbentuk {form} dengan uuid dalam bentuk kanonis huruf kecil "
            "(8-4-4-4-12 digit heksadesimal, mis. {e})",
        ),
        (
            r"(?P<s>'[^']*') is not a canonical entity stream id",
            "{s} bukan id stream entitas kanonis",
        ),
        (r"(?P<f>.+) id must be a UUID", "id {f} harus UUID"),
        (r"cursor is not valid", "cursor tidak sah"),
        (r"(?P<f>\S+) is required", "{f} wajib diisi"),
        (r"data is required: the event payload", "data wajib diisi: isi peristiwa"),
        (r"(?P<f>\S+) must be an integer", "{f} harus bilangan bulat"),
        (r"(?P<f>\S+) must be a number", "{f} harus angka"),
        (r"(?P<f>\S+) must be between (?P<a>\S+) and (?P<b>\S+)", "{f} harus antara {a} dan {b}"),
        (r"(?P<f>\S+) must be given once", "{f} hanya boleh diberikan sekali"),
        (r"(?P<f>\S+) must be true or false", "{f} harus true atau false"),
        (r"(?P<f>\S+) must be an RFC 3339 time or a date", "{f} harus waktu RFC 3339 atau tanggal"),
        (r"(?P<f>\S+) needs a time zone offset", "{f} memerlukan selisih zona waktu"),
        (
            r"(?P<f>\S+) must be among (?P<a>.+), not (?P<v>'[^']*')",
            "{f} harus salah satu dari {a}, bukan {v}",
        ),
        (r"(?P<f>\S+) must be a code, not (?P<v>'[^']*')", "{f} harus berupa kode, bukan {v}"),
        (r"(?P<f>\S+) must be one of (?P<a>.+)", "{f} harus salah satu dari {a}"),
        (
            r"as_of must carry a timezone \(e\.g\. Z or \+07:00\)",
            "as_of harus memuat zona waktu (mis. Z atau +07:00)",
        ),
        (
            r"as_of must be an RFC 3339 time with a timezone",
            "as_of harus waktu RFC 3339 dengan zona waktu",
        ),
        (r"q is at most (?P<n>\d+) characters", "q paling banyak {n} karakter"),
        (r"a value is out of range for its field", "sebuah nilai di luar rentang isiannya"),
        (
            r"a value cannot be stored as sent \(out of range or not storable\)",
            "sebuah nilai tidak dapat disimpan seperti dikirim (di luar rentang)",
        ),
        (
            r"text must not contain the NUL character \(U\+0000\)",
            "teks tidak boleh memuat karakter NUL (U+0000)",
        ),
        (r"JSON is nested deeper than (?P<n>\d+) levels", "JSON bersarang lebih dari {n} tingkat"),
        (r"unknown event type (?P<t>.+)", "jenis peristiwa {t} tidak dikenal"),
        (rf"no (?P<thing>{_THING}) (?P<id>.+)", "{thing} {id} tidak ditemukan"),
        (r"stream (?P<s>.+) does not exist", "stream {s} tidak ada"),
        (r"event (?P<e>\S+) is not in the log", "peristiwa {e} tidak ada di log"),
        (
            r"stream (?P<s>.+) is at version (?P<a>-?\d+), the writer expected (?P<e>.+)",
            "stream {s} berada pada versi {a}, penulis mengharapkan {e}",
        ),
        (
            r"event id (?P<e>\S+) is already taken; send this event with a new id",
            "id peristiwa {e} sudah dipakai; kirim peristiwa ini dengan id baru",
        ),
        (r"event id (?P<e>\S+) is already stored.*", "id peristiwa {e} sudah tersimpan"),
        (
            r"region (?P<c>\S+) is outside this token's regions",
            "wilayah {c} di luar wilayah token ini",
        ),
        (r"this (?P<c>\w+) is outside the token's regions", "{c} ini di luar wilayah token ini"),
        (r"this token writes for (?P<r>.+) only", "token ini hanya menulis untuk {r}"),
        (
            r"a (?P<role>\w+) token may not write (?P<c>\w+) streams",
            "token {role} tidak boleh menulis stream {c}",
        ),
        (
            r"this needs one of the roles (?P<r>.+); the token is (?P<role>\w+)",
            "permintaan ini memerlukan salah satu peran {r}; token ini berperan {role}",
        ),
        (
            r"this page needs one of the roles (?P<r>.+)",
            "halaman ini memerlukan salah satu peran {r}",
        ),
        (
            r"(?P<what>.+) needs one of the roles (?P<r>.+)",
            "{what} memerlukan salah satu peran {r}",
        ),
        (r"send `Authorization: Bearer <token>`", "kirim `Authorization: Bearer <token>`"),
        (r"the token is unknown or revoked", "token tidak dikenal atau sudah dicabut"),
        (
            r"this token sent too many requests; slow down",
            "token ini mengirim terlalu banyak permintaan; perlambat",
        ),
        (
            r"this operation is expensive and limited per token",
            "operasi ini berat dan dibatasi per token",
        ),
        (
            r"too many requests without a valid token from this address",
            "terlalu banyak permintaan tanpa token sah dari alamat ini",
        ),
        (
            r"send the body as application/json, not (?P<t>.+)",
            "kirim isi permintaan sebagai application/json, bukan {t}",
        ),
        (
            r"Maximum request body size (?P<m>\d+) exceeded(?:, actual body size \d+|\.)?",
            "isi permintaan melebihi batas {m} byte",
        ),
        (r"the request body did not arrive in time", "isi permintaan tidak tiba tepat waktu"),
        (
            r"the view has not reached position (?P<p>\d+) yet; retry shortly",
            "tampilan belum mencapai posisi {p}; coba lagi sebentar lagi",
        ),
        (
            r"an unexpected error occurred; it has been logged",
            "terjadi kesalahan tak terduga; sudah dicatat di log",
        ),
        # 503s
        *(
            (
                rf"{re.escape(en)}; retry later \(appends with the same event ids are idempotent\)",
                f"{id_}; coba lagi nanti (append dengan id peristiwa yang sama idempoten)",
            )
            for en, id_ in (
                ("the database is out of disk space", "basis data kehabisan ruang disk"),
                ("the database has no free connections", "basis data tidak punya koneksi bebas"),
                ("the database did not answer in time", "basis data tidak menjawab tepat waktu"),
                (
                    "the database refused the operation under contention",
                    "basis data menolak operasi karena perebutan",
                ),
                ("the database is unavailable", "basis data tidak tersedia"),
                (
                    "this view's read model is being rebuilt for this version of coord",
                    "model baca tampilan ini sedang dibangun ulang untuk versi coord ini",
                ),
            )
        ),
        (
            r"the view did not finish within (?P<n>\S+) s; narrow it with filters "
            r"\(category, province, region\) and retry",
            "tampilan tidak selesai dalam {n} detik; persempit dengan filter (kategori, "
            "provinsi, wilayah) lalu coba lagi",
        ),
        (
            r"this token already has (?P<n>\d+) live feeds open; close one or retry later",
            "token ini sudah membuka {n} feed; tutup salah satu atau coba lagi nanti",
        ),
        # "<field>: <msgspec detail>" (a query parameter's parse error)
        (r"(?P<f>[\w.$\[\]]+): (?P<rest>.+)", "{f}: {rest}"),
    )
)

#: a problem's Indonesian detail when the catalogue does not know its English one
FALLBACK_ID: Final[dict[int, str]] = {
    400: "permintaan tidak dapat dibaca",
    401: "token tidak dikirim, tidak dikenal atau sudah dicabut",
    403: "token ini tidak diizinkan melakukan permintaan ini",
    404: "sumber yang diminta tidak ditemukan",
    405: "metode ini tidak diizinkan pada alamat ini",
    408: "permintaan tidak tiba tepat waktu",
    409: "permintaan bertentangan dengan keadaan sekarang; tidak ada yang ditulis",
    413: "isi permintaan terlalu besar",
    415: "jenis media isi permintaan tidak didukung",
    422: "isi permintaan tidak sah; tidak ada yang ditulis",
    429: "terlalu banyak permintaan; coba lagi setelah Retry-After",
    500: "terjadi kesalahan tak terduga; sudah dicatat di log",
    503: "layanan sementara tidak tersedia; coba lagi nanti",
}


def detail_in_indonesian(detail: str) -> str | None:
    """The catalogue's Indonesian for an English detail, or None if it has no entry."""
    for pattern, text in DETAILS_ID:
        found = pattern.fullmatch(detail)
        if found is None:
            continue
        values = found.groupdict()
        if "rest" in values:
            # A prefix before a detail of its own: translate that detail too.
            rest = detail_in_indonesian(values["rest"])
            if rest is None:
                continue
            values["rest"] = rest
        if "thing" in values:
            values["thing"] = _THINGS_ID.get(values["thing"], values["thing"])
        return text.format(**values)
    return None


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
    """The same problem with its title and detail in Indonesian (English in ``detail_en``)."""
    extra = dict(problem.extra)
    detail = problem.detail
    rule = extra.get("rule")
    if isinstance(rule, str) and rule in RULES_ID:
        extra["detail_en"] = problem.detail
        detail = RULES_ID[rule]
        # A payload off its schema: say what is off, as the catalogue words it.
        specific = detail_in_indonesian(problem.detail) if problem.detail else None
        if rule == "event.invalid" and specific is not None:
            detail = f"{detail}: {specific}"
    elif detail is not None:
        extra["detail_en"] = detail
        detail = detail_in_indonesian(detail) or FALLBACK_ID.get(
            problem.status, "permintaan tidak dapat dilayani"
        )
    headers = {**problem.headers, "Content-Language": "id"}
    return Problem(
        problem.status,
        problem.slug,
        TITLES_ID.get(problem.title, problem.title),
        detail,
        headers=headers,
        **extra,
    )
