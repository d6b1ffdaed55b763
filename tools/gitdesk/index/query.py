"""What people type into a search box, turned into FTS5 expressions that can never be a syntax error.

The syntax is the one people know from web search: words (all must match), "quoted
phrases", ``word*`` for words that start so, ``-word`` (or ``NOT word``) to exclude, and
``OR`` between two words or phrases for either. Everything the user typed goes into
FTS5 as a quoted string, so ``NEAR(``, ``*``, ``:``, ``^`` or an unbalanced quote is just
text; what holds no letter or digit at all is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import InvalidValue

MAX_WORDS = 64
_PIECE = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+")  # what SQLite's unicode61 tokenizer keeps, near enough

# Words too common to tell tickets apart; left out when terms are picked from a ticket.
STOPWORDS = frozenset("""
a about above after again all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
get got had has have having he her here hers him his how i if in into is it its just like me
more most my no nor not now of off on once only or other our out over own please same she
should so some such than thank thanks that the their them then there these they this those
through to too under until up very was we were what when where which while who whom why will
with would you your yours hi hello regards best dear
""".split())


@dataclass(frozen=True)
class Term:
    text: str             # a word or a phrase, as typed
    prefix: bool = False  # word*


@dataclass(frozen=True)
class Query:
    groups: tuple[tuple[Term, ...], ...]     # all groups must match; any term of a group
    excluded: tuple[Term, ...] = field(default=())

    def fts(self, columns: Sequence[str] | None = None) -> str:
        """The FTS5 MATCH expression; ``columns`` limits every term (and exclusion) to them."""
        spec = "{" + " ".join(columns) + "} : " if columns else ""

        def phrase(term: Term) -> str:
            return spec + '"' + term.text.replace('"', '""') + '"' + (" *" if term.prefix else "")

        expr = " AND ".join(
            phrase(g[0]) if len(g) == 1 else "(" + " OR ".join(phrase(t) for t in g) + ")"
            for g in self.groups)
        for term in self.excluded:
            expr = f"({expr}) NOT {phrase(term)}"
        return expr


def parse(text: str) -> Query:
    """A Query from what the user typed; nothing to search for is a one-line error."""
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    joining = negate = False
    for sign, quoted, bare in _PIECE.findall(text.replace("\x00", " ")):
        if bare in ("OR", "AND", "NOT"):
            joining = bare == "OR" and bool(groups)
            negate = bare == "NOT"
            continue
        words, prefix = quoted, False
        exclude = negate or sign == "-"
        if not quoted and bare:
            exclude = exclude or (bare.startswith("-") and len(bare) > 1)
            words = bare[1:] if bare.startswith("-") else bare
            prefix = words.endswith("*")
            words = words.rstrip("*")
        negate = False
        if not _WORD.search(words):
            continue  # only punctuation: the tokenizer would drop it anyway
        term = Term(" ".join(words.split()), prefix and bool(_WORD.search(words[-1:])))
        if exclude:
            excluded.append(term)
        elif joining:
            groups[-1].append(term)
        else:
            groups.append([term])
        joining = False
    count = sum(len(_WORD.findall(t.text)) for g in groups for t in g) + \
        sum(len(_WORD.findall(t.text)) for t in excluded)
    if count > MAX_WORDS:
        raise InvalidValue(f"the search has {count} words; use at most {MAX_WORDS}")
    if not groups:
        raise InvalidValue("nothing to search for: give at least one word (not only -word)"
                           if excluded else "nothing to search for: give a word or a \"phrase\"")
    return Query(tuple(tuple(g) for g in groups), tuple(excluded))


def any_of(words: Iterable[str]) -> Query:
    """A query matching any of the words (for finding articles like a ticket)."""
    return Query((tuple(Term(w) for w in words),))


def words(text: str) -> list[str]:
    """The words of a text, lower-cased, as the index splits them."""
    return [w.lower() for w in _WORD.findall(text)]
