"""Every Prefect artifact escapes data (issue 15, item 14): an imported id, a unit's name or
a summary value can add no HTML, no link or image, and cannot break a table row. The
artifact's markdown is rendered with markdown-it (CommonMark + tables, raw HTML allowed, as
a permissive viewer would) and the HTML is checked."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from flows.bracket import artifact_markdown, md, rows_table, table

IMG = "<img src=x onerror=alert(1)>"
LINK = "[x](javascript:alert(1))"
IMAGE = "![x](http://evil.example/x.png)"
PIPE = "a | b"
NEWLINE = "line one\n| injected | row |\n# heading"
PAYLOADS = [IMG, LINK, IMAGE, PIPE, NEWLINE, "`code`", "**bold**", "<script>x</script>"]


def render(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def assert_inert(html: str) -> None:
    assert "<img" not in html and "<script" not in html
    assert "<a " not in html and "href" not in html
    assert "<code>" not in html and "<strong>" not in html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_md_keeps_data_plain_text(payload: str) -> None:
    text = md(payload)
    assert "\n" not in text
    assert_inert(render(text))
    # What a reader sees is the data itself (one line).
    shown = render(text).removeprefix("<p>").removesuffix("</p>\n")
    assert shown.replace("&quot;", '"').replace("&amp;", "&") == " ".join(payload.split()).replace(
        "<", "&lt;"
    ).replace(">", "&gt;")


def test_tables_and_the_artifact_keep_every_row_one_row() -> None:
    summary = {f"key{i} {p}": p for i, p in enumerate(PAYLOADS)}
    rows = [(p, i, p) for i, p in enumerate(PAYLOADS)]
    markdown = artifact_markdown(
        f"look-back {IMG}",
        summary,
        before=[*table({"unit": LINK}, "| parameter | value |"), ""],
        after=["", *rows_table(("ticket", "n", "first"), rows, right=("n",))],
    )
    html = render(markdown)
    assert_inert(html)
    assert html.count("<h1>") == 1  # the title; no heading from data
    # Two-column tables: the summary and the parameters; a row per entry, no cell more.
    assert html.count("<tr>") == (len(summary) + 1) + 2 + (len(rows) + 1)
    for body in html.split("<tbody>")[1:]:
        first = body.split("</tr>")[0]
        assert first.count("<td") in (2, 3)
    assert "<td>a | b</td>" in html and "onerror=alert(1)" in html  # shown, not run
