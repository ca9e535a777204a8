"""The MIME shape of a notice with a chart and a workbook: the chart inline, the workbook
attached, the archived HTML's relative image links rewritten to the inline part."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from duban.notices.mailer import Message, build_email, inline_cid

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_png_goes_inline_and_the_workbook_is_attached(tmp_path: Path) -> None:
    chart = tmp_path / "weekly-trend.png"
    chart.write_bytes(PNG)
    book = tmp_path / "台账-cy.xlsx"
    book.write_bytes(b"PK\x03\x04 not really a workbook")
    message = Message(
        recipient="office@duban.example",
        subject="周分析",
        html='<p>趋势</p><img src="weekly-trend.png" alt="trend">',
        text="趋势",
        message_id="<x@duban>",
        attachments=(book,),
        inline=(chart,),
    )
    parsed = message_from_bytes(
        build_email(message, "duban@duban.example").as_bytes(policy=policy.SMTP),
        policy=policy.default,
    )
    html = parsed.get_body(("html",))
    assert html is not None
    assert f'src="cid:{inline_cid(chart)}"' in html.get_content()
    assert 'src="weekly-trend.png"' not in html.get_content()
    images = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    assert images[0]["Content-ID"] == f"<{inline_cid(chart)}>"
    assert images[0].get_payload(decode=True) == PNG
    attached = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attached] == ["台账-cy.xlsx"]
    assert parsed.get_body(("plain",)).get_content().strip() == "趋势"  # type: ignore[union-attr]


def test_without_images_the_message_has_no_related_part(tmp_path: Path) -> None:
    message = Message("a@duban.example", "s", "<p>x</p>", "x", "<y@duban>")
    built = build_email(message, "duban@duban.example")
    assert not any(p.get_content_type() == "multipart/related" for p in built.walk())
