"""E-mail (``.eml``, RFC 5322 / MIME) to text, with the standard library's ``email``.

The text starts with the headers a reader cites (Subject, From, To, Cc, Date), then the
body: the ``text/plain`` part, or the ``text/html`` one made plain by the HTML loader.
Attachments are named, not read. The subject is the title.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from mcp_rag.errors import LoaderError
from mcp_rag.ingest.html import parse_html
from mcp_rag.ingest.safety import read_bytes
from mcp_rag.types import Sections

MAIL_EXTS = {".eml"}
HEADERS = ("Subject", "From", "To", "Cc", "Date")


def parse_mail(path: Path, fallback_title: str) -> tuple[str, str, Sections]:
    """(text, title, sections) of one e-mail message."""
    try:
        msg = email.message_from_bytes(read_bytes(path), policy=email.policy.default)
        if not isinstance(msg, EmailMessage):  # what the default policy always makes
            raise TypeError(f"parsed as {type(msg).__name__}")
        head = [f"{h}: {msg[h]}" for h in HEADERS if msg[h]]
        body = msg.get_body(preferencelist=("plain", "html"))
        text = ""
        if body is not None:
            content = body.get_content()
            if body.get_content_type() == "text/html":
                content = parse_html(content, fallback_title)[0]
            text = str(content).replace("\r\n", "\n").strip()
        attached = [p.get_filename() or p.get_content_type() for p in msg.iter_attachments()]
    except (LookupError, ValueError, TypeError) as e:  # bad charset, MIME
        raise LoaderError(f"{path}: unreadable e-mail ({type(e).__name__}: {e})") from e
    if not head or not (text or attached):
        raise LoaderError(f"{path}: not an e-mail message (no headers or no body)")
    if attached:
        head.append("Attachments: " + ", ".join(attached))
    subject = str(msg["Subject"] or "").strip()
    return "\n".join(head) + "\n\n" + text, subject or fallback_title, ()
