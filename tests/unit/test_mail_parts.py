"""The MIME shape of a notice with a chart and a workbook: the chart inline, the workbook
attached, the archived HTML's relative image links rewritten to the inline part; attachments
with Chinese file names, RFC 2231-encoded, as a real SMTP server and the .eml outbox get them."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from duban.notices.mailer import FileMailer, Message, SmtpMailer, build_email, inline_cid
from duban.settings import Settings

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


CHINESE = ("台账-市住房城乡建设委-2026-10-31.xlsx", "评分.csv")


def chinese_attachments(tmp_path: Path) -> Message:
    files = []
    for name in CHINESE:
        (tmp_path / name).write_bytes(f"content of {name}".encode())
        files.append(tmp_path / name)
    return Message("office@duban.example", "月通报", "<p>x</p>", "x", "<z@duban>",
                   attachments=tuple(files))  # fmt: skip


def test_chinese_file_names_reach_a_real_smtp_server_and_the_eml_file(
    tmp_path: Path, smtp_server: Any
) -> None:
    message = chinese_attachments(tmp_path)
    settings = Settings(_env_file=None, smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                        smtp_security="none", mail_from="duban@duban.example")  # type: ignore[call-arg]  # fmt: skip
    mailer = SmtpMailer(settings)
    try:
        mailer.send(message)
    finally:
        mailer.close()
    [received] = smtp_server.messages
    parts = list(received.message.iter_attachments())
    assert [p.get_filename() for p in parts] == list(CHINESE)
    assert [p.get_payload(decode=True) for p in parts] == [
        f"content of {n}".encode() for n in CHINESE
    ]

    FileMailer(tmp_path / "outbox", "duban@duban.example").send(message)
    [eml] = (tmp_path / "outbox").glob("*.eml")
    raw = eml.read_bytes()
    assert raw.isascii()  # no raw UTF-8 in any header: RFC 2231, not 8-bit names
    assert b"filename*=utf-8''%E8%AF%84%E5%88%86.csv" in raw  # 评分.csv
    assert b"filename*0*=utf-8''%E5%8F%B0%E8%B4%A6" in raw  # 台账…, long: in two pieces
    parsed = message_from_bytes(raw, policy=policy.default)
    assert [p.get_filename() for p in parsed.iter_attachments()] == list(CHINESE)
