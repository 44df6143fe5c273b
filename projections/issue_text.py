"""What an issue says, as terms: Indonesian-aware normalisation, stemming and stop words.

An issue's title and description become a bag of terms that two offices writing the same
problem in their own words share:

1. **Field vocabulary** (``data/synonyms-id.txt``): abbreviations and synonyms map to one
   canonical term ("sumber daya manusia", "pegawai", "personel" -> ``sdm``; "UMK", "upah
   minimum" -> ``umr``). Variants may be several words; the longest match wins.
2. **Stop words** (``data/stopwords-id.txt``) and **place names** (the region register)
   are dropped: "KPU Kota Kediri" says where, not what.
3. **Stemming** with Sastrawi (Nazief-Adriani, the maintained Indonesian stemmer):
   "kekurangan", "kurangnya", "dikurangi" -> ``kurang``.

Both files are data that national staff extend; ``Vocabulary.current()`` reads them again
when their modification time changes, so an edit applies without a restart (to issues
grouped from then on; a rebuild regroups the old ones).

Loading fails safe. An edit that does not parse (a synonyms line without ``term:``, a
file that is missing or not UTF-8) never reaches the projections: the previous vocabulary
stays in force and ``vocabulary.reload_failed`` is logged once per edit, naming the file
and line. With no previous vocabulary (the process is starting) the same fault raises
``VocabularyError``: the issue board loads the vocabulary when it is constructed, so a
malformed file stops ``coord serve`` or ``coord projections`` at startup with the file
and line, rather than a projection that fails on every batch.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import structlog
from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

from events.domain.regions import load_regions

log = structlog.get_logger("coord.vocabulary")

DATA_DIR = Path(__file__).parent / "data"
SYNONYMS_FILE = DATA_DIR / "synonyms-id.txt"
STOPWORDS_FILE = DATA_DIR / "stopwords-id.txt"

#: environment variables that point at other files (a deployment's own vocabulary)
SYNONYMS_ENV = "COORD_SYNONYMS_FILE"
STOPWORDS_ENV = "COORD_STOPWORDS_FILE"

# Words: letters and digits, with inner hyphens and slashes ("e-ktp", "7/2017").
_WORD = re.compile(r"[0-9a-z]+(?:[-/][0-9a-z]+)*")
# Common nouns of geography that also occur in place names ("Kepulauan Seribu") but say
# something about a problem (remote islands, river areas): kept although a place uses them.
_GEOGRAPHY = frozenset(
    "kepulauan pulau laut gunung pegunungan sungai pesisir pedalaman hulu hilir teluk danau "
    "daratan tanah".split()
)
#: the title weighs as much as this many descriptions: it is what the office chose to say
TITLE_WEIGHT = 2


class VocabularyError(ValueError):
    """A vocabulary file that cannot be read or parsed: which file, which line, why."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (accents folded)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _WORD.findall(folded)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The synonym table, stop words and place names, as loaded from their files."""

    #: variant (tuple of words) -> canonical term
    synonyms: dict[tuple[str, ...], str]
    longest: int
    stopwords: frozenset[str]
    places: frozenset[str]
    #: the files' modification times, to notice an edit
    stamp: tuple[float, float]

    def terms(self, text: str) -> list[str]:
        """The terms of ``text``: canonical for known variants, stemmed, without stop words."""
        tokens = words(text)
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self.longest, len(tokens) - i), 0, -1):
                canonical = self.synonyms.get(tuple(tokens[i : i + n]))
                if canonical is not None:
                    out.append(canonical)
                    i += n
                    break
            else:
                word = tokens[i]
                i += 1
                if word in self.stopwords or word in self.places or word.isdigit():
                    continue
                stem = _stem(word)
                if len(stem) > 2 and stem not in self.stopwords:
                    out.append(stem)
        return out

    def issue_terms(self, title: str, description: str) -> Counter[str]:
        """Term counts of an issue, its title counting ``TITLE_WEIGHT`` times."""
        counts: Counter[str] = Counter()
        for term in self.terms(title):
            counts[term] += TITLE_WEIGHT
        counts.update(self.terms(description))
        return counts

    @classmethod
    def load(cls, synonyms_file: Path, stopwords_file: Path) -> Vocabulary:
        """Read both files (see their headers for the format).

        Raises ``VocabularyError`` (file and line) if either cannot be read or parsed.
        """
        synonyms: dict[tuple[str, ...], str] = {}
        for number, line in _lines(synonyms_file):
            canonical, sep, variants = line.partition(":")
            key = tuple(words(canonical))
            if not sep or len(key) != 1:
                reason = f"not 'term: variant, ...' (one word before ':'): {line!r}"
                raise VocabularyError(synonyms_file, number, reason)
            synonyms[key] = key[0]
            for variant in variants.split(","):
                if form := tuple(words(variant)):
                    synonyms[form] = key[0]
        stopwords = frozenset(w for _, line in _lines(stopwords_file) for w in words(line))
        places = frozenset(
            w
            for region in load_regions().all()
            for w in words(region.name)
            if w not in _GEOGRAPHY and w not in ("kabupaten", "kota", "provinsi")
        )
        return cls(
            synonyms=synonyms,
            longest=max((len(k) for k in synonyms), default=1),
            stopwords=stopwords,
            places=places,
            stamp=(_mtime(synonyms_file), _mtime(stopwords_file)),
        )

    @classmethod
    def current(cls) -> Vocabulary:
        """The vocabulary of the configured files, read again if either file changed.

        A reload that fails keeps the previous vocabulary (and logs the file and line);
        with no previous one, ``VocabularyError`` is raised.
        """
        files = _files()
        with _lock:
            cached = _cache.get(files)
            try:
                stamp = (_mtime(files[0]), _mtime(files[1]))
            except OSError as e:
                if cached is None:
                    raise VocabularyError(Path(e.filename or files[0]), None, str(e)) from e
                stamp = (-1.0, -1.0)  # unreadable: counts as a failed edit
            if cached is not None and cached.stamp == stamp:
                return cached
            if cached is not None and _failed.get(files) == stamp:
                return cached  # this edit failed already (logged once)
            try:
                fresh = cls.load(*files)
            except VocabularyError as e:
                if cached is None:
                    raise
                _failed[files] = stamp
                log.error(
                    "vocabulary.reload_failed",
                    file=str(e.path),
                    line=e.line,
                    reason=e.reason,
                    kept="previous vocabulary",
                )
                return cached
            _failed.pop(files, None)
            _cache[files] = fresh
            return fresh


_lock = threading.Lock()
_cache: dict[tuple[Path, Path], Vocabulary] = {}
#: the stamp of an edit that failed to load, per pair of files (not retried until it changes)
_failed: dict[tuple[Path, Path], tuple[float, float]] = {}
_stemmer = StemmerFactory().create_stemmer()
_stems: dict[str, str] = {}


def _stem(word: str) -> str:
    # Sastrawi's stemmer is pure Python and slow per call; words repeat, so remember them.
    stem = _stems.get(word)
    if stem is None:
        stem = word if any(c.isdigit() for c in word) else (_stemmer.stem(word) or word)
        if len(_stems) < 200_000:
            _stems[word] = stem
    return stem


def _files() -> tuple[Path, Path]:
    return (
        Path(os.environ.get(SYNONYMS_ENV) or SYNONYMS_FILE),
        Path(os.environ.get(STOPWORDS_ENV) or STOPWORDS_FILE),
    )


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def _lines(path: Path) -> list[tuple[int, str]]:
    """The non-empty lines of a file without comments, with their 1-based numbers."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise VocabularyError(path, None, e.strerror or str(e)) from e
    out = []
    for number, data in enumerate(raw.split(b"\n"), start=1):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise VocabularyError(path, number, f"not UTF-8 ({e.reason})") from e
        line = text.split("#", 1)[0].strip()
        if line:
            out.append((number, line))
    return out
