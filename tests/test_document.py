"""Markdown + frontmatter: parse(render(doc)) == doc, and errors that name path:line."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gitdesk.core.document import Document, parse, render
from gitdesk.errors import InvalidDocument

UTC = dt.timezone.utc

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=12)
yaml_words = st.sampled_from([
    "yes", "no", "on", "off", "y", "n", "true", "False", "null", "Null", "~", "", " ", "#x", "# x",
    "a #b", "- a", "-", ":", "a: b", "? x", "'", '"', "''", "12", "012", "0x1F", "1_000", "1:20",
    "1.5", ".5", "1e3", ".inf", ".nan", "2026-01-01", "2026-01-01T00:00:00Z", "@x", "`y", "%z",
    "!tag", "&anchor", "*alias", "|", ">", "[a]", "{b: c}", "---", "...", "--- x", " lead",
    "trail ", "a\n", "\na", "a\n\n", "\t", "tab\there", "a\r\nb", "\x85", "a\u2028b", "\u2029",
    "\ufeffbom", "\x00", "\x07bell", "\x7f", "caf\u00e9", "\u4e2d\u6587", "\U0001f600",
])
texts = st.one_of(yaml_words, st.text(max_size=60),
                  st.lists(st.sampled_from(["word", " ", "\n", "#", ":", "-", "'", '"', "yes", "\u00e9"]),
                           max_size=40).map("".join))
moments = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31),
                       timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))
values = st.one_of(texts, st.integers(), st.lists(texts, max_size=4), moments)
metas = st.dictionaries(keys, values, max_size=8)
# A body as gitdesk stores it: LF line ends, no blank lines around it. NUL is left out on
# purpose: a file holding NUL bytes is refused as binary.
bodies = st.text().map(lambda t: t.replace("\r", "").replace("\x00", "").strip("\n"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metas, bodies)
@example({"k": "\n\xa0\u2028"}, "")  # libyaml once wrote U+2028 raw and swallowed the '---'
@example({"k": "a\x85b", "l": ["\u2029"]}, "---\nnot frontmatter\n---")
@example({"created": dt.datetime(2026, 12, 3, 18, 6, 59, tzinfo=UTC), "n": 7, "yes": "no"}, "Body")
def test_parse_render_round_trip(meta, body):
    doc = Document(meta, body)
    text = render(doc)
    again = parse(text, "issues/1/issue.md")
    assert again == doc
    assert render(again) == text  # rendering is canonical: a second pass changes nothing


def test_render_writes_utc_timestamps_with_z():
    moment = dt.datetime(2026, 12, 3, 19, 6, 59, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    text = render(Document({"updated": moment}, ""))
    assert text == "---\nupdated: 2026-12-03T18:06:59Z\n---\n"
    assert parse(text, "x.md").meta["updated"] == moment


def test_render_layout_and_line_numbers():
    text = render(Document({"title": "Hi", "labels": ["a", "b"], "note": "two\nlines"}, "Body\n\n"))
    assert text == ("---\ntitle: Hi\nlabels:\n- a\n- b\nnote: |-\n  two\n  lines\n---\n\nBody\n")
    assert parse(text, "x.md").lines == {"title": 2, "labels": 3, "note": 6}


def test_crlf_and_bom_read_like_lf():
    text = "\ufeff---\r\ntitle: Hi\r\n---\r\n\r\nLine one\r\nLine two\r\n"
    doc = parse(text, "x.md")
    assert doc == Document({"title": "Hi"}, "Line one\nLine two")


def test_an_empty_frontmatter_and_a_body_that_looks_like_frontmatter():
    doc = parse("---\n---\n\n---\ntitle: not meta\n---\n", "x.md")
    assert doc.meta == {}
    assert doc.body == "---\ntitle: not meta\n---"


# -- errors name path:line ---------------------------------------------------------------------

@pytest.mark.parametrize("text, line, reason", [
    ("---\ntitle: A\nstatus: open: now\n---\n", 3, "invalid YAML: mapping values are not allowed"),
    ("---\ntitle: A\ntype: bug\npriority: normal\nlabels: [a, b}\n---\n", 5,
     "invalid YAML: did not find expected ',' or ']'"),
    ("---\ntitle: A\ntype: bug\npriority: normal\nlabels: @x\n---\n", 5,
     "invalid YAML: found character that cannot start any token"),
    ("---\ntitle: A\ntype: bug\npriority: normal\n  labels: x\n---\n", 5,
     "invalid YAML: mapping values are not allowed"),
    ("---\ntitle: A\n\tstatus: new\n---\n", 3, "invalid YAML: found a tab character"),
    ("---\ntitle: A\nbody: 'unclosed\nlabels: []\n---\nText\n", 5, "invalid YAML:"),
    ("---\ntitle: A\nstatus: new\nstatus: closed\n---\n", 4,
     "invalid YAML: duplicate field 'status' (also on line 3)"),
    ("---\ntitle: &a A\nother: *b\n---\n", 3, "invalid YAML: found undefined alias"),
    ("---\n- just\n- a list\n---\n", 2, "frontmatter must be a mapping of field: value"),
    ("title: no fences\n", 1, "missing frontmatter: the file must begin with a '---' line"),
    ("---\ntitle: never closed\n", 1, "frontmatter is not closed by a '---' line"),
    ("\n\n---\ntitle: late\n---\n", 1, "missing frontmatter"),
    ("<<<<<<< HEAD\n---\ntitle: Ours\n---\n=======\n---\ntitle: Theirs\n---\n>>>>>>> origin/main\n", 1,
     "git conflict markers: a merge or rebase left this file half done; abort it"),
    ("---\ntitle: A\n<<<<<<< HEAD\nstatus: open\n=======\nstatus: closed\n>>>>>>> theirs\n---\n", 3,
     "git conflict markers"),
])
def test_bad_frontmatter_names_the_path_and_line(text, line, reason):
    with pytest.raises(InvalidDocument) as caught:
        parse(text, "issues/7/issue.md")
    err = caught.value
    assert (err.path, err.line) == ("issues/7/issue.md", line)
    assert err.reason.startswith(reason), err.reason
    assert str(err).startswith(f"issues/7/issue.md:{line}: {reason}")
    assert "\n" not in str(err)


def test_a_bad_line_deep_in_the_frontmatter_is_counted_from_the_top_of_the_file():
    fields = [f"field{n}: value {n}" for n in range(1, 30)]
    fields[20] = "field21: [unclosed, list"
    fields[21] = "field22: next: thing"
    text = "---\n" + "\n".join(fields) + "\n---\n\nBody\n"
    with pytest.raises(InvalidDocument) as caught:
        parse(text, "kb/a.md")
    # field21 is on line 22 of the file (the '---' is line 1); libyaml notices the missing ']'
    # where the next key starts
    assert caught.value.line in (22, 23)


def test_binary_text_is_refused():
    with pytest.raises(InvalidDocument, match="binary file"):
        parse("---\ntitle: a\x00b\n---\n", "x.md")
