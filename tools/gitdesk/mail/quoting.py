"""The new part of a reply: cut at our 'reply above this line' marker, else at the first
quote header a mail client writes ('On ... wrote:', 'Am ... schrieb', '-----Original
Message-----', an Outlook 'From:/Sent:' block), else drop a trailing block of '>' lines.

Time is linear in the text: lines are examined one by one, and each pattern sees at most
the first 300 characters of a line, so an 80 kB single line costs one short match.
"""

from __future__ import annotations

import re

MARKER = "##- Please type your reply above this line -##"
_MARKER_RE = re.compile(r"^\W{0,6}#+-\s*(please type your reply above this line|"
                        r"bitte oberhalb dieser zeile antworten)", re.I)
_MARKER_WORDS = re.compile(r"(?i)above this line|oberhalb dieser zeile")  # cheap test first
_PEEK = 300

# One line that opens a quoted message, in the languages our customers write.
_HEADER_LINES = [
    r"on\b.{0,200}\bwrote:?\s*$",                        # On Mon, 1 Jan 2026, Bob <b@x> wrote:
    r"am\b.{0,200}\bschrieb\b.{0,120}:?\s*$",            # Am 01.01.2026 um 10:00 schrieb Bob:
    r"le\b.{0,200}\ba\s+[ée]crit\s*:?\s*$",              # Le 1 janv. 2026, Bob a écrit :
    r"el\b.{0,200}\bescribi[óo]\s*:?\s*$",               # El 1 ene 2026, Bob escribió:
    r"op\b.{0,200}\bschreef\b.{0,120}:?\s*$",            # Op 1 jan. 2026 schreef Bob:
    r"il\b.{0,200}\bha\s+scritto\s*:?\s*$",              # Il giorno ... ha scritto:
    r"em\b.{0,200}\bescreveu\s*:?\s*$",                  # Em 1 de jan, Bob escreveu:
    r"den\b.{0,200}\bskrev\b.{0,120}:?\s*$",             # Den 1 jan 2026 skrev Bob:
    r"w\s+dniu\b.{0,200}\bnapisa[łl]",                   # W dniu ... napisał:
    r"-{2,}(?!-)\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|forwarded message|weitergeleitete nachricht)"
    r"\s*-{2,}",
    r"_{20,}\s*$",                                       # Outlook's rule above From:/Sent:
]
_HEADER_RE = re.compile("|".join(f"(?:{p})" for p in _HEADER_LINES), re.I)
_WROTE_END = re.compile(r"\b(wrote|schrieb|écrit|escribió|schreef|scritto|escreveu|skrev)\b.{0,120}:?\s*$", re.I)
_FIELD_RE = re.compile(r"^\*?(from|von|de|van|da|från|od|от)\s*:\*?\s", re.I)
_SENT_RE = re.compile(r"^\*?(sent|date|gesendet|datum|envoyé|enviado|inviato|verzonden|"
                      r"skickat|wysłano|отправлено)\s*:", re.I)


def _is_quote_header(lines: list[str], i: int) -> bool:
    line = lines[i].strip()[:_PEEK]
    if not line:
        return False
    if _HEADER_RE.match(line):
        return True
    nxt = lines[i + 1].strip()[:_PEEK] if i + 1 < len(lines) else ""
    # Gmail folds a long attribution: "On Mon, ... Bob <bob@" / "example.com> wrote:"
    if re.match(r"(on|am|le|el|op)\b", line, re.I) and len(line) > 20 and _WROTE_END.search(nxt):
        return True
    # Outlook: a "From:" line with a "Sent:" or "Date:" line within the next two
    if _FIELD_RE.match(line):
        window = [lines[j].strip()[:_PEEK] for j in range(i + 1, min(i + 3, len(lines)))]
        return any(_SENT_RE.match(w) for w in window)
    return False


def reply_part(text: str) -> str:
    """The text above the quoted history; the whole text when no cut leaves anything."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        head = line[:_PEEK]
        if _MARKER_WORDS.search(head) and _MARKER_RE.match(head):
            return _trim(_drop_attribution(lines[:i]), text)
    for i in range(len(lines)):
        if _is_quote_header(lines, i):
            cut = _trim(lines[:i], "")
            if cut:
                return cut
            break
    end = len(lines)
    while end and (lines[end - 1].lstrip()[:1] == ">" or not lines[end - 1].strip()):
        end -= 1
    return _trim(lines[:end], text)


def _drop_attribution(lines: list[str]) -> list[str]:
    """Above our marker a client often writes 'On ..., Support wrote:': it goes too."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    # Outlook puts its whole header block (From:, Sent:, To:, Subject:) above our marker.
    for j in range(max(0, end - 8), end):
        if _FIELD_RE.match(lines[j].strip()[:_PEEK]) and _is_quote_header(lines, j):
            while j and (not lines[j - 1].strip() or set(lines[j - 1].strip()) <= set("_-")):
                j -= 1  # the rule line Outlook draws above it
            return lines[:j]
    if end and (_is_quote_header(lines, end - 1) or _WROTE_END.search(lines[end - 1][:_PEEK])):
        end -= 1
        if end and re.match(r"\s*(on|am|le|el|op)\b", lines[end - 1][:_PEEK], re.I) \
                and not _WROTE_END.search(lines[end - 1][:_PEEK]):
            end -= 1  # the first half of a folded attribution
    return lines[:end]


def _trim(lines: list[str], fallback: str) -> str:
    text = "\n".join(lines).strip("\n")
    return text if text.strip() else fallback.strip("\n")
