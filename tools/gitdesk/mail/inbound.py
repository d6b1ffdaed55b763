"""One received message, from raw bytes to plain data: sender, ids, text and attachments.

Parsing uses the email package's compat32 policy, which keeps going on broken input where
the newer header registry raises (``To: "``, ``Cc: (x): ...``, ``<[...]@...>`` Message-IDs,
``name*`` parameters), and reads every value through our own decoders. The size, the number
of parts and their depth are capped before and during parsing. ``Refused`` names the reason
a message cannot be read; the gateway quarantines it with that reason.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import io
import re
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import Message

from .charsets import clean_text, decode_bytes, decode_header, one_line, raw_text
from .htmltext import html_to_text

MAX_PARTS = 500
MAX_DEPTH = 30
MAX_TEXT = 200_000  # characters of body text kept in the comment; the original keeps all
ADDRESS_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
                        r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z")
_ID_RE = re.compile(r"<([^<>\s]{1,500})>")


class Refused(Exception):
    """A message that cannot be read as mail; ``str()`` is the reason."""


@dataclass(frozen=True)
class Address:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass
class DeliveryFailure:
    """One recipient a delivery report says could not be reached."""

    recipient: str
    status: str
    diagnostic: str


@dataclass
class Inbound:
    raw: bytes
    message_id: str
    synthetic_id: bool
    sender: Address | None
    subject: str
    date: dt.datetime | None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> first value
    text: str = ""
    html_only: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    content_type: str = "text/plain"
    report_type: str = ""
    failures: list[DeliveryFailure] = field(default_factory=list)
    returned_ids: list[str] = field(default_factory=list)  # Message-IDs of a bounced message
    sender_problem: str = ""  # why the From gives no sender (an ambiguous From), if it says

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def thread_ids(self) -> list[str]:
        """Ids this message answers, nearest first."""
        return list(dict.fromkeys([*self.in_reply_to, *reversed(self.references)]))


def parse_message(raw: bytes, max_bytes: int = 25 * 1024 * 1024) -> Inbound:
    if len(raw) > max_bytes:
        raise Refused(f"too large: {len(raw)} bytes (mail.max_bytes is {max_bytes})")
    if not raw.strip():
        raise Refused("empty message")
    nested = len(re.findall(rb"(?im)^content-type:[ \t]*multipart", raw[: 4 * 1024 * 1024]))
    if nested > MAX_PARTS:
        raise Refused(f"more than {MAX_PARTS} multipart parts")
    try:
        msg = email.message_from_bytes(_mend_folding(raw), policy=email.policy.compat32)
    except RecursionError:
        raise Refused("MIME parts nested too deeply") from None
    headers: dict[str, str] = {}
    froms: list[str] = []
    for name, value in msg.raw_items():
        key = str(name).strip().lower()
        headers.setdefault(key, raw_text(str(value)))
        if key == "from":
            froms.append(raw_text(str(value)))
    if not headers:
        raise Refused("no mail headers")
    message_id, synthetic = _message_id(headers.get("message-id", ""), raw)
    sender, problem = sender_of(froms)
    inbound = Inbound(
        raw=raw, message_id=message_id, synthetic_id=synthetic,
        sender=sender, sender_problem=problem,
        subject=decode_header(headers.get("subject", ""), limit=250),
        date=_date(headers.get("date", "")),
        to=addresses(headers.get("to", "")), cc=addresses(headers.get("cc", "")),
        in_reply_to=ids(headers.get("in-reply-to", ""))[:20],
        references=ids(headers.get("references", ""))[-50:],
        headers={k: decode_header(v) for k, v in headers.items()},
        content_type=_safe(msg.get_content_type, "text/plain"),
    )
    _Walker(inbound).walk(msg, 0)
    return inbound


_HEADER_LINE = re.compile(rb"([\041-\071\073-\176]*:|[ \t]|From )")  # as email.feedparser
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def _mend_folding(raw: bytes) -> bytes:
    """A header folded without the leading space (Exchange writes such lines in its long
    diagnostic headers): the stray line is made a continuation when a header follows it.
    The parser would otherwise end the headers there, and Content-Type, From or Subject
    below it would become body text. The original bytes are kept as they came."""
    end = _HEAD_END.search(raw, 0, 1024 * 1024)
    if end is None:
        return raw
    lines = raw[:end.start()].split(b"\n")
    mended = False
    for i in range(1, len(lines) - 1):
        if lines[i].strip() and not _HEADER_LINE.match(lines[i]) and _HEADER_LINE.match(lines[i + 1]):
            lines[i] = b" " + lines[i]
            mended = True
    return b"\n".join(lines) + raw[end.start():] if mended else raw


def ids(value: str) -> list[str]:
    return list(dict.fromkeys(_ID_RE.findall(value)))


def _message_id(value: str, raw: bytes) -> tuple[str, bool]:
    found = ids(value)
    if found:
        return found[0], False
    bare = one_line(value).strip("<>")
    if bare and len(bare) < 500 and " " not in bare:
        return bare, False
    return f"{hashlib.sha256(raw).hexdigest()[:40]}@gitdesk.invalid", True


def addresses(value: str) -> list[Address]:
    """Every well-formed address in an address header; the rest is ignored, never raised."""
    if not value:
        return []
    value = re.sub(r"\r?\n[ \t]*", " ", value)[:20000]
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:  # noqa: BLE001 - the parser has raised on hostile headers in the past
        pairs = []
    found: list[Address] = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>")
        local, _, domain = addr.rpartition("@")
        addr = f"{local}@{domain.lower()}"
        if ADDRESS_RE.match(addr) and addr not in {a.email for a in found}:
            found.append(Address(decode_header(name, limit=100).strip('"\' '), addr))
    return found[:100]


_NAME_ADDRESS_RE = re.compile(r"[^\s<>()\[\],;:\"'@]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


class _Ambiguous(Exception):
    """A From that does not name exactly one address beyond doubt; ``str()`` says why."""


def _from_parts(value: str) -> tuple[str, str]:
    """(display name, addr-spec) of a From with exactly one mailbox, read the way RFC 5322
    (and so a DMARC check) reads it: quoted strings and comments are skipped, and the
    address is what stands inside the one ``<...>``, or the whole value when there is none.
    Raises _Ambiguous for a list, a group, a second ``<...>`` or anything after it."""
    outside: list[str] = []   # the value without quoted strings and comments
    name: list[str] = []      # what may be display name: the text before '<', quotes kept
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
            (name if depth == 0 else []).append(char)
            continue
        if char == "\\" and (quoted or depth):
            escaped = True
            continue
        if quoted:
            quoted = char != '"'
            if quoted:
                name.append(char)
            continue
        if depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
            continue
        if char == '"':
            quoted = True
            outside.append(" ")
        elif char == "(":
            depth = 1
            outside.append(" ")
        elif char == ")":
            raise _Ambiguous("unbalanced parentheses")
        else:
            outside.append(char)
            name.append(char)
    if quoted or depth:
        raise _Ambiguous("an unterminated quote or comment")
    bare = "".join(outside)
    if any(c in bare for c in ",;:"):
        raise _Ambiguous("more than one address, or a group")
    if bare.count("<") != bare.count(">") or bare.count("<") > 1:
        raise _Ambiguous("more than one <address>")
    if "<" not in bare:
        addr = bare.strip()
        if not addr or any(c.isspace() for c in addr):
            raise _Ambiguous("text around the address")
        return "", addr
    before, _, rest = bare.partition("<")
    addr, _, after = rest.partition(">")
    if after.strip():
        raise _Ambiguous(f"text after the <address>: {after.strip()[:60]!r}")
    if "@" in before and before.strip().lower() != addr.strip().lower():
        raise _Ambiguous(f"an address in the name before the <address>: {before.strip()[:60]!r}")
    text = "".join(name)
    return text[:text.find("<")] if "<" in text else text, addr.strip()


def sender_of(values: list[str]) -> tuple[Address | None, str]:
    """The one sender of the From header(s) and, when there is none, why.

    The address is the addr-spec (what a DMARC check sees), never the display name. A
    second From header, more than one address, text around the ``<address>`` or a display
    name that is another address give no sender, with the reason: such mail is quarantined
    rather than credited to an address that may not be its real author."""
    values = [re.sub(r"\r?\n[ \t]*", " ", v)[:2000].strip() for v in values if v.strip()]
    if not values:
        return None, ""
    if len(values) > 1:
        return None, "more than one From header"
    try:
        name, addr = _from_parts(values[0])
    except _Ambiguous as why:
        return None, str(why)
    local, _, domain = addr.rpartition("@")
    addr = f"{local}@{domain.lower()}"
    if not ADDRESS_RE.match(addr):
        return None, ""
    parsed = addresses(values[0])
    if {a.email.lower() for a in parsed} != {addr.lower()}:
        return None, "the address cannot be read one way only"
    name = decode_header(name.strip(), limit=100).strip('"\' ') or parsed[0].name
    shown = name.strip(" \t\r\n\"'<>()[]")
    if _NAME_ADDRESS_RE.fullmatch(shown) and shown.lower() != addr.lower():
        return None, f"the name {shown[:80]!r} is another address than <{addr}>"
    return Address(name, addr), ""


def _date(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(one_line(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0)


def _safe(func, fallback):
    try:
        return func()
    except Exception:  # noqa: BLE001 - compat32 accessors on hostile parameters
        return fallback


class _Walker:
    """Collects the body text and the attachments of a parsed message, depth first."""

    def __init__(self, inbound: Inbound):
        self.inbound = inbound
        self.parts = 0
        self.texts: list[str] = []
        self.html_texts: list[str] = []

    def walk(self, msg: Message, depth: int) -> None:
        self._node(msg, depth)
        text = "\n\n".join(t for t in self.texts if t.strip())
        if not text.strip() and self.html_texts:
            text = "\n\n".join(self.html_texts)
            self.inbound.html_only = True
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT] + "\n\n[... cut here; the whole message is kept with the ticket]"
        self.inbound.text = text.strip("\n")

    def _node(self, part: Message, depth: int) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise Refused(f"more than {MAX_PARTS} MIME parts")
        if depth > MAX_DEPTH:
            raise Refused(f"MIME parts nested more than {MAX_DEPTH} deep")
        ctype = _safe(part.get_content_type, "text/plain")
        # The email package reads message/delivery-status as a list of header blocks, which
        # looks like a forwarded message: ask for it first, or no bounce is ever understood.
        if ctype == "message/delivery-status":
            return self._delivery_status(part)
        if ctype == "message/rfc822" or (part.is_multipart() and not ctype.startswith("multipart/")):
            return self._forwarded(part)
        if ctype == "text/rfc822-headers":
            self._returned_headers(_decoded_text(part))
            return self._attach(part, ctype)
        if part.is_multipart():
            children = part.get_payload()
            if not isinstance(children, list):
                return
            if ctype == "multipart/report":
                self.inbound.report_type = (_safe(lambda: part.get_param("report-type"), "") or "")
                self.inbound.report_type = str(self.inbound.report_type).lower()
            if ctype == "multipart/alternative":
                children = _preferred(children)
            for child in children:
                if isinstance(child, Message):
                    self._node(child, depth + 1)
            return
        disposition = str(_safe(part.get_content_disposition, "") or "")
        filename = _filename(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = _decoded_text(part)
            if ctype == "text/html":
                self.html_texts.append(html_to_text(text))
            else:
                self.texts.append(text)
            return
        self._attach(part, ctype, filename)

    def _attach(self, part: Message, ctype: str, filename: str = "") -> None:
        data = _safe(lambda: part.get_payload(decode=True), b"") or b""
        if not isinstance(data, bytes):
            data = str(data).encode("utf-8", "surrogateescape")
        n = len(self.inbound.attachments) + 1
        ext = _EXTENSIONS.get(ctype, ".bin" if not ctype.startswith("text/") else ".txt")
        self.inbound.attachments.append(Attachment(filename or f"attachment-{n}{ext}", ctype, data))

    def _forwarded(self, part: Message) -> None:
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if not isinstance(inner, Message):
            return self._attach(part, "message/rfc822")
        out = io.BytesIO()
        try:
            BytesGenerator(out, mangle_from_=False, policy=email.policy.compat32).flatten(inner)
        except Exception:  # noqa: BLE001 - a broken inner message stays in the original
            return
        if self.inbound.report_type:
            self._returned_headers(out.getvalue()[:65536].decode("utf-8", "replace"))
        n = len(self.inbound.attachments) + 1
        self.inbound.attachments.append(Attachment(f"message-{n}.eml", "message/rfc822", out.getvalue()))

    def _delivery_status(self, part: Message) -> None:
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            return
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            if not isinstance(block, Message):
                continue
            recipient = one_line(str(block.get("Final-Recipient") or block.get("Original-Recipient") or ""))
            recipient = recipient.split(";", 1)[-1].strip().strip("<>").lower()
            action = one_line(str(block.get("Action") or "")).lower()
            status = one_line(str(block.get("Status") or ""))
            if recipient and (action == "failed" or status.startswith("5")):
                diagnostic = one_line(raw_text(str(block.get("Diagnostic-Code") or "")))[:300]
                self.inbound.failures.append(DeliveryFailure(recipient, status, diagnostic))

    def _returned_headers(self, text: str) -> None:
        head = text.split("\n\n", 1)[0]
        match = re.search(r"(?im)^message-id:\s*(.*)$", head)
        if match:
            self.inbound.returned_ids += ids(match.group(1))


def _preferred(children: list) -> list:
    """multipart/alternative: the plain text if it says anything, else the rest."""
    for child in children:
        if isinstance(child, Message) and _safe(child.get_content_type, "") == "text/plain" \
                and _decoded_text(child).strip():
            return [child]
    return [c for c in children if not (isinstance(c, Message)
                                        and _safe(c.get_content_type, "") == "text/plain")]


def _decoded_text(part: Message) -> str:
    data = _safe(lambda: part.get_payload(decode=True), b"") or b""
    if not isinstance(data, bytes):
        data = str(data).encode("utf-8", "surrogateescape")
    charset = _safe(part.get_content_charset, None)
    return clean_text(decode_bytes(data, charset))


def _filename(part: Message) -> str:
    name = _safe(part.get_filename, None)
    if not name:
        return ""
    return decode_header(raw_text(str(name)), limit=200)


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "application/pdf": ".pdf",
               "text/calendar": ".ics", "text/html": ".html", "application/pgp-signature": ".asc",
               "application/pkcs7-signature": ".p7s", "application/pkcs7-mime": ".p7m",
               "message/delivery-status": ".txt", "text/rfc822-headers": ".txt"}
