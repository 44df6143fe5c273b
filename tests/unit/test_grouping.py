"""Grouping and issue text: no chaining, determinism across reloads, vocabulary reload
that fails safe."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import structlog

from projections.grouping import Grouping, cluster_id
from projections.issue_board import IssueBoard
from projections.issue_text import (
    STOPWORDS_ENV,
    STOPWORDS_FILE,
    SYNONYMS_ENV,
    SYNONYMS_FILE,
    Vocabulary,
    VocabularyError,
)

# Three issues about a long campaign period, three about black campaigns on social
# media: they share "kampanye" only. Grouping must keep two groups, not chain them.
LONG = [
    ("Masa kampanye terlalu lama", "Masa kampanye tujuh bulan terlalu panjang dan melelahkan."),
    ("Durasi kampanye terlalu panjang", "Kampanye berlangsung berbulan-bulan, terlalu lama."),
    ("Kampanye perlu dipersingkat", "Masa kampanye yang panjang memperpanjang polarisasi."),
]
BLACK = [
    ("Kampanye hitam di media sosial", "Hoaks dan fitnah terhadap calon beredar di media sosial."),
    ("Fitnah calon di media sosial", "Kampanye hitam berupa hoaks menyebar lewat WhatsApp."),
    ("Hoaks menyerang peserta pemilu", "Konten fitnah dan kampanye hitam di TikTok dan Facebook."),
]


def _terms(texts: list[tuple[str, str]]) -> list[Counter[str]]:
    vocabulary = Vocabulary.current()
    return [vocabulary.issue_terms(title, description) for title, description in texts]


def test_similar_problems_group_and_one_shared_word_does_not_chain() -> None:
    """Each problem is one group; "kampanye" alone does not merge them."""
    g = Grouping()
    for n, terms in enumerate(_terms(LONG + BLACK)):
        g.add(f"i{n}", terms, "campaign")
    assert len({g.group_of[f"i{n}"] for n in range(3)}) == 1
    assert len({g.group_of[f"i{n}"] for n in range(3, 6)}) == 1
    assert g.group_of["i0"] != g.group_of["i3"]
    # A bridging issue that says both does not fuse the groups either.
    g.add("bridge", _terms([("Kampanye lama", "Kampanye hitam di media sosial.")])[0], "campaign")
    assert g.group_of["i0"] != g.group_of["i3"]


def test_reloaded_grouping_decides_like_the_live_one() -> None:
    """Memory rebuilt from what the projection stores gives the same answers (verify)."""
    texts = LONG + BLACK
    terms = _terms(texts)
    live = Grouping()
    for n, t in enumerate(terms[:-1]):
        live.add(f"i{n}", t, "campaign")
    reloaded = Grouping(
        created=live.created, weights_n=live.weights_n, weights_df=dict(live.weights_df)
    )
    for n, t in enumerate(terms[:-1]):
        reloaded.load(f"i{n}", t, "campaign", live.group_of[f"i{n}"])
    assert reloaded.add("last", terms[-1], "campaign") == live.add("last", terms[-1], "campaign")
    assert reloaded.groups == live.groups


def test_a_group_id_comes_from_its_founding_member_and_survives_regrouping() -> None:
    """Ids follow the issues, not the order groups were created in.

    A vocabulary edit and rebuild can create another group before a problem's first
    issue arrives (here: an unrelated issue first); its group keeps the same id, so an
    analyst's name or merge stored against that id still means the same issues.
    """
    terms = _terms(LONG + BLACK)
    before = Grouping()
    for n, t in enumerate(terms):
        before.add(f"i{n}", t, "campaign")
    after = Grouping()
    after.add("other", _terms([("Gudang logistik bocor", "Kotak suara basah.")])[0], "logistics")
    for n, t in enumerate(terms):
        after.add(f"i{n}", t, "campaign")
    assert before.group_of["i0"] == after.group_of["i0"] == cluster_id("i0")
    assert before.group_of["i3"] == after.group_of["i3"] == cluster_id("i3")
    assert after.group_of["other"] == cluster_id("other")
    # A founder that leaves does not take the id along: the group keeps it, and a new
    # group the founder starts gets another id.
    before.place("i0", None)
    assert before.group_of["i1"] == cluster_id("i0") != before.group_of["i0"]


def test_analyst_decisions_hold_against_the_algorithm() -> None:
    """A placed issue stays put and a merged group stays merged while issues arrive."""
    g = Grouping()
    for n, t in enumerate(_terms(LONG + BLACK)):
        g.add(f"i{n}", t, "campaign")
    g.place("i0", "mine")
    g.merge(g.group_of["i3"], g.group_of["i1"])
    merged = g.group_of["i3"]
    for n, t in enumerate(_terms(LONG)):
        g.add(f"more{n}", t, "campaign")
    assert g.group_of["i0"] == "mine"
    assert g.group_of["i1"] == g.group_of["i2"] == g.group_of["i4"] == merged
    # A correction of a placed issue changes its terms, not its group.
    g.retext("i0", _terms(BLACK[:1])[0])
    assert g.group_of["i0"] == "mine"


def test_corrected_text_regroups_the_issue() -> None:
    """An issue corrected to say another problem moves to that problem's group."""
    g = Grouping()
    terms = _terms(LONG + BLACK)
    for n, t in enumerate(terms):
        g.add(f"i{n}", t, "campaign")
    changes = g.retext("i2", _terms([BLACK[2]])[0])
    assert g.group_of["i2"] == g.group_of["i3"] and changes.get("i2") == g.group_of["i3"]


def test_vocabulary_is_data_and_reloads_when_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit of the synonyms file applies without a restart."""
    synonyms = tmp_path / "synonyms.txt"
    synonyms.write_text("honor: honorarium\n", encoding="utf-8")
    monkeypatch.setenv(SYNONYMS_ENV, str(synonyms))
    monkeypatch.setenv(STOPWORDS_ENV, str(STOPWORDS_FILE))
    assert Vocabulary.current().terms("uang lelah petugas") != ["honor", "tugas"]
    synonyms.write_text("honor: honorarium, uang lelah\n", encoding="utf-8")
    later = time.time() + 5
    os.utime(synonyms, (later, later))
    assert Vocabulary.current().terms("uang lelah petugas") == ["honor", "tugas"]


def test_a_malformed_edit_keeps_the_previous_vocabulary_and_logs_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload that fails to parse keeps the vocabulary in force; the error names file:line."""
    synonyms = tmp_path / "synonyms.txt"
    synonyms.write_text("honor: honorarium, uang lelah\n", encoding="utf-8")
    monkeypatch.setenv(SYNONYMS_ENV, str(synonyms))
    monkeypatch.setenv(STOPWORDS_ENV, str(STOPWORDS_FILE))
    assert Vocabulary.current().terms("uang lelah petugas") == ["honor", "tugas"]
    synonyms.write_text("honor: honorarium, uang lelah\n# fine\nno colon here\n", encoding="utf-8")
    later = time.time() + 5
    os.utime(synonyms, (later, later))
    with structlog.testing.capture_logs() as logs:
        kept = Vocabulary.current()
        assert Vocabulary.current() is kept  # the failed edit is not parsed (nor logged) again
    assert kept.terms("uang lelah petugas") == ["honor", "tugas"]
    assert [e for e in logs if e["event"] == "vocabulary.reload_failed"] == [
        {
            "event": "vocabulary.reload_failed",
            "log_level": "error",
            "file": str(synonyms),
            "line": 3,
            "reason": "not 'term: variant, ...' (one word before ':'): 'no colon here'",
            "kept": "previous vocabulary",
        }
    ]
    # The next edit that parses applies.
    synonyms.write_text("honor: honorarium\n", encoding="utf-8")
    os.utime(synonyms, (later + 5, later + 5))
    assert Vocabulary.current().terms("uang lelah petugas") != ["honor", "tugas"]


def test_a_malformed_file_at_startup_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no vocabulary loaded yet, constructing the issue board fails, naming file:line."""
    synonyms = tmp_path / "synonyms.txt"
    synonyms.write_text("honor: honorarium\nsdm personel pegawai\n", encoding="utf-8")
    monkeypatch.setenv(SYNONYMS_ENV, str(synonyms))
    monkeypatch.setenv(STOPWORDS_ENV, str(STOPWORDS_FILE))
    with pytest.raises(VocabularyError, match=rf"^{re.escape(str(synonyms))}:2: not 'term:"):
        IssueBoard()
    (tmp_path / "stop.txt").write_bytes(b"dan\nyang \xff\n")
    monkeypatch.setenv(SYNONYMS_ENV, str(SYNONYMS_FILE))
    monkeypatch.setenv(STOPWORDS_ENV, str(tmp_path / "stop.txt"))
    with pytest.raises(VocabularyError, match=r"stop\.txt:2: not UTF-8"):
        Vocabulary.current()
    monkeypatch.setenv(STOPWORDS_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(VocabularyError, match=r"missing\.txt"):
        Vocabulary.current()
