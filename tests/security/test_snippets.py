"""Search snippets are escaped, then marked (issue 12, item 7).

A regional office's text is data, never markup: whatever it holds, a snippet is
HTML-escaped text whose only tags are coord's own `<b>` marks around matches.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.api.payloads import append, hearing_scheduled, issue_raised, new_id, statement
from tests.api.test_views import vclient  # noqa: F401  (the fixture)
from tests.conftest import bearer

HOSTILE = [
    "Honorarium <svg/onload=alert(1)> KPPS",
    "Honorarium <img src=x onerror=alert(document.cookie)> terlambat",
    'Honorarium "><script>alert(1)</script> belum cair',
    'Honorarium <a href="javascript:alert(1)">klik di sini</a> untuk detail',
    "Honorarium <b>tebal</b> dan </b><b onclick=alert(1)>palsu",
    "Honorarium \ue000<i>penanda</i>\ue001 pribadi \ue001 \ue000",
    "Honorarium &lt;sudah&gt; di-escape &amp; 'kutip'",
]


class Tags(HTMLParser):
    """Every tag of an HTML fragment, and its text (entities resolved)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(("/" + tag, []))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(fragment: str) -> Tags:
    """The tags and text of a snippet, as a browser's HTML parser would see them."""
    parser = Tags()
    parser.feed(fragment)
    parser.close()
    return parser


@pytest.fixture
async def hostile_hits(vclient: Any, token_for: Any) -> list[dict[str, Any]]:  # noqa: F811
    """Every hostile text raised as an issue and recorded as a statement; the search hits."""
    kediri = bearer(await token_for(vclient, "regional", ["35.71"], "KPU Kota Kediri"))
    national = bearer(await token_for(vclient, "national"))
    last = 0
    sid = f"hearing-{new_id()}"
    events: list[Any] = [("HearingScheduled", hearing_scheduled("35.71"))]
    events += [("StatementRecorded", statement(text)) for text in HOSTILE]
    resp = await vclient.post(f"/v1/streams/{sid}/events", json=append(0, *events), headers=kediri)
    assert resp.status == 201, await resp.text()
    for text in HOSTILE:
        body = append(0, ("IssueRaised", issue_raised(None, "35.71", description=text)))
        resp = await vclient.post(f"/v1/streams/issue-{new_id()}/events", json=body, headers=kediri)
        assert resp.status == 201, await resp.text()
        last = int((await resp.json())["last_position"])
    resp = await vclient.get(
        "/v1/search",
        params={"q": "honorarium", "min_position": last, "limit": 200},
        headers=national,
    )
    assert resp.status == 200, await resp.text()
    hits: list[dict[str, Any]] = (await resp.json())["items"]
    kinds = [h["kind"] for h in hits]
    assert (kinds.count("issue"), kinds.count("statement")) == (len(HOSTILE), len(HOSTILE))
    return hits


def untagged(snippet: str) -> str:
    """A snippet without coord's marks (still escaped)."""
    return snippet.replace("<b>", "").replace("</b>", "")


async def test_snippets_are_escaped_text_with_only_coords_marks(
    hostile_hits: list[dict[str, Any]],
) -> None:
    """No tag, attribute or script of the stored text survives; matches are `<b>`-marked."""
    for hit in hostile_hits:
        snippet = hit["snippet"]
        parsed = parse(snippet)
        # The only markup is coord's: bare <b> and </b>, in pairs.
        assert [t for t, _ in parsed.tags] == ["b", "/b"] * (len(parsed.tags) // 2), snippet
        assert all(not attrs for _, attrs in parsed.tags), snippet
        # Outside coord's own tags, nothing a browser would read as markup or an attribute.
        bare = untagged(snippet)
        assert "<" not in bare and ">" not in bare and '"' not in bare, snippet
        assert "\ue000" not in snippet and "\ue001" not in snippet, snippet
        assert snippet.startswith("<b>Honorarium</b> "), snippet
        # Forged markers in the text did not become marks: one match, one mark.
        assert snippet.count("<b>") == 1, snippet
        # The text a browser shows is the stored text's (ts_headline drops what its
        # parser takes for tags, and trailing punctuation; nothing is added).
        shown = "".join(parsed.text).split()
        source = plain(hit_text(hit))
        assert all(word in source for word in shown), (shown, source)


def hit_text(hit: dict[str, Any]) -> str:
    """The hostile text behind a hit (its snippet's first words after the match)."""
    words = html.unescape(untagged(hit["snippet"])).split()
    (text,) = [t for t in HOSTILE if all(w in plain(t) for w in words)]
    return text


def plain(text: str) -> str:
    """What the stored text reads as once the private-use markers are gone."""
    return text.replace("\ue000", "").replace("\ue001", "")


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        (HOSTILE[0], "&lt;svg/onload=alert(1)&gt;"),
        (HOSTILE[1], "&lt;img src=x onerror=alert(document.cookie)&gt;"),
        (HOSTILE[2], "&quot;&gt; alert(1)"),
        (HOSTILE[3], "klik di sini"),
        (HOSTILE[4], "&lt;b onclick=alert(1)&gt;palsu"),
        (HOSTILE[5], "penanda  pribadi"),
        (HOSTILE[6], "&amp;lt;sudah&amp;gt; di-escape &amp;amp; &#x27;kutip"),
    ],
)
async def test_each_hostile_text_is_escaped(
    hostile_hits: list[dict[str, Any]], text: str, escaped: str
) -> None:
    """The issue's description and the statement both carry the text, escaped."""
    found = [h for h in hostile_hits if escaped in h["snippet"]]
    assert sorted(h["kind"] for h in found) == ["issue", "statement"], hostile_hits
