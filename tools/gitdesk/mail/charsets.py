"""Bytes in whatever charset a mail claims, and RFC 2047 header words, to text: never an error.

Real mail names charsets Python does not know ("iso-gb2312", "unicode-1-1-utf-7"), labels
8-bit text as ASCII, splits one multi-byte character over two encoded words, writes
ISO-2022-JP with Microsoft's extra characters (No., circled digits), and pastes UTF-8 and
Latin-1 into one text. Each case has a fallback here, and the last fallback always succeeds
(with U+FFFD for lost bytes).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

# Labels seen in the wild that Python's codec registry does not resolve, or resolves to a
# narrower codec than the senders meant (GB2312 mail is usually GBK; EUC-KR is usually CP949).
_ALIASES = {
    "iso-gb2312": "gb18030", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "cn-gb": "gb18030", "euc-cn": "gb18030",
    "unicode-1-1-utf-7": "utf-7", "x-unicode-2-0-utf-7": "utf-7",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6",
    "x-sjis": "shift_jis", "shift-jis": "shift_jis", "sjis": "shift_jis", "windows-31j": "cp932",
    "big5": "big5hkscs", "x-mac-roman": "mac_roman", "macintosh": "mac_roman",
    "ansi_x3.4-1968": "ascii", "us-ascii": "ascii", "utf8": "utf-8", "x-user-defined": "cp1252",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",  # as browsers do
    "cp-850": "cp850", "ibm850": "cp850",
}


def codec_for(label: str | None) -> str | None:
    """The Python text codec for a charset label, or None when there is no such charset."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*en
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):  # base64_codec, rot13 ... are not charsets
        return None
    return info.name


def decode_bytes(data: bytes, label: str | None = None) -> str:
    """Text from bytes: the declared charset if it fits, then UTF-8, then UTF-8 with each
    byte that is not UTF-8 read as Windows-1252 (text pasted together from two sources).
    Always valid Unicode: a lone surrogate (UTF-7 and UTF-16 can encode one) becomes U+FFFD."""
    return valid_text(_decode_bytes(data, label))


_SURROGATES = re.compile(r"[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD: it can be written as UTF-8
    (YAML, JSON, git) without an error."""
    return _SURROGATES.sub("\ufffd", text)


def _decode_bytes(data: bytes, label: str | None) -> str:
    declared = codec_for(label)
    tries: list[str] = []
    if declared in (None, "ascii"):
        tries.append("utf-8")  # 8-bit text mislabelled as ASCII, or unlabelled, is mostly UTF-8
    if declared:
        tries.append(declared)
    for codec in dict.fromkeys([*tries, "utf-8"]):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            if codec.startswith("iso2022_jp"):
                text = _iso2022jp_as_cp932(data)
                if text is not None:
                    return text
            if codec.startswith("iso2022") and data.isascii():  # as UTF-8 it keeps the escapes
                return data.decode(codec, errors="replace")
    return data.decode("utf-8", errors=_CP1252_BYTES)


def _cp1252_bytes(err: UnicodeError) -> tuple[str, int]:
    """Error handler: the bytes UTF-8 could not read, as Windows-1252 (U+FFFD where it has
    no character)."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    bad = err.object[err.start:err.end]
    return bad.decode("cp1252", errors="replace"), err.end


_CP1252_BYTES = "gitdesk-cp1252-bytes"
codecs.register_error(_CP1252_BYTES, _cp1252_bytes)

_JIS_ESCAPE = re.compile(rb"\x1b(\$[@B]|\$\(D|\([BJI])")


def _iso2022jp_as_cp932(data: bytes) -> str | None:
    """ISO-2022-JP as Microsoft writes it (CP932's extra characters, such as No. and circled
    digits, in the JIS rows Python's codec refuses): each JIS pair becomes its Shift_JIS pair,
    and the whole is read as CP932. None when that does not work either."""
    out = bytearray()
    mode = b"(B"
    pos = 0
    for match in [*_JIS_ESCAPE.finditer(data), None]:
        chunk = data[pos:match.start() if match else len(data)]
        if mode == b"$(D":  # JIS X 0212 has no place in CP932
            return None
        if mode.startswith(b"$"):
            if len(chunk) % 2:
                return None
            for j1, j2 in zip(chunk[::2], chunk[1::2], strict=True):
                if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
                    return None
                s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
                s2 = j2 + (0x1F + (j2 >= 0x60) if j1 & 1 else 0x7E)
                out += bytes((s1, s2))
        elif mode == b"(I":
            out += bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in chunk)
        else:
            out += chunk
        if match:
            mode, pos = match.group(1), match.end()
    try:
        return bytes(out).decode("cp932")
    except UnicodeDecodeError:
        return None


def raw_text(value: str) -> str:
    """A header as the parser keeps it (8-bit bytes smuggled as surrogates) to real text."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return decode_bytes(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate that is no smuggled byte (decoded UTF-7, say)
        return valid_text(value)


_WORD = re.compile(r"=\?([^?\s]{1,60})\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"[ \t]+")


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        text = re.sub(r"[^A-Za-z0-9+/]", "", text)
        text += "=" * (-len(text) % 4)
        try:
            return base64.b64decode(text)
        except (binascii.Error, ValueError):
            return text.encode("ascii", "replace")
    raw = text.replace("_", " ").encode("ascii", "replace")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_header(value: str | None, limit: int = 4000) -> str:
    """A header's text: unfolded, encoded words decoded (adjacent ones joined), one line."""
    if not value:
        return ""
    value = raw_text(str(value))[: limit * 4]
    value = re.sub(r"\r?\n[ \t]*", " ", value)
    parts: list[tuple[str | None, bytes | str]] = []  # (charset, bytes) for words, (None, text)
    pos = 0
    for match in _WORD.finditer(value):
        gap = value[pos:match.start()]
        if gap and not (_BETWEEN_WORDS.fullmatch(gap) and parts and parts[-1][0] is not None):
            parts.append((None, gap))  # whitespace between two encoded words is dropped
        parts.append((match.group(1).lower(), _word_bytes(match.group(2), match.group(3))))
        pos = match.end()
    if pos < len(value):
        parts.append((None, value[pos:]))
    out: list[str] = []
    i = 0
    while i < len(parts):
        charset, data = parts[i]
        if charset is None:
            out.append(str(data))
            i += 1
            continue
        chunk = bytearray()
        while i < len(parts) and parts[i][0] == charset:  # one character may span two words
            chunk += parts[i][1]  # type: ignore[operator]
            i += 1
        out.append(decode_bytes(bytes(chunk), charset))
    return valid_text(one_line("".join(out)))[:limit]


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")


def one_line(text: str) -> str:
    """No line breaks or control characters; runs of space made one."""
    return re.sub(r"\s+", " ", _CONTROLS.sub(" ", text.replace("\t", " "))).strip()


_ENCODED_WORD_START = re.compile(r"=(?=\?)")


def header_text(text: str) -> str:
    """Data (a title, a name, a Message-ID) as the text of an outgoing header: one line,
    valid Unicode, and no RFC 2047 encoded word. The email package decodes any ``=?...?=``
    in a value it is given and would write a CR LF hidden in one out as real header lines
    (CVE-2024-6923), so every ``=?`` gets an invisible U+200B between its two characters."""
    return _ENCODED_WORD_START.sub("=\u200b", valid_text(one_line(str(text))))


def clean_text(text: str) -> str:
    """Body text: LF line ends, no NULs or other control characters but tab and newline."""
    text = valid_text(text).replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
