"""The real thing: all three IETF GitHub archives of the shared corpus in one tracker.

../shared/corpus/issues/ietf-github-archive/ (see its SOURCES.md): 1,000 issues with 3,573
comments, plus 1,736 pull requests that must be left out. The tracker is built once for the
module (about 4 s); the last test runs a real MkDocs build of it (about 10-15 s).
Skipped when the corpus is absent.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from conftest import CORPUS, USER, Cli, commit_count, git

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

ARCHIVES = CORPUS / "issues" / "ietf-github-archive"
# folder: (repository, issues, issue comments, pull requests) as SOURCES.md lists them
EXPECTED = {
    "tlswg-tls13-spec": ("tlswg/tls13-spec", 446, 963, 998),
    "quicwg-multipath": ("quicwg/multipath", 304, 1350, 346),
    "tlswg-draft-ietf-tls-esni": ("tlswg/draft-ietf-tls-esni", 250, 1260, 392),
}


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """A fresh tracker with the three archives imported, one `gitdesk import github` each."""
    if not all((ARCHIVES / name / "archive.json").is_file() for name in EXPECTED):
        pytest.skip(f"corpus not available: {ARCHIVES}")
    from gitdesk.scaffold import init

    with pytest.MonkeyPatch.context() as mp:  # the module fixture runs before the autouse one
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("GITDESK_USER", USER)
        for name in ("GITDESK_DIR", "GITDESK_NOW", "GITDESK_SITE_STAFF"):
            mp.delenv(name, raising=False)
        root = init(tmp_path_factory.mktemp("corpus") / "desk", name="IETF archives")
        cli = Cli(root)
        first = commit_count(root)
        results, seconds = {}, {}
        for name in EXPECTED:
            start = time.perf_counter()
            out = cli("gitdesk", "import", "github", str(ARCHIVES / name / "archive.json"), "--json")
            seconds[name] = time.perf_counter() - start
            results[name] = json.loads(out.stdout)
        print(f"\nimport times: { {k: round(v, 2) for k, v in seconds.items()} }")
        yield {"root": root, "cli": cli, "first": first, "results": results}


def archive(name: str) -> dict:
    return json.loads((ARCHIVES / name / "archive.json").read_text(encoding="utf-8"))


def test_each_archive_is_one_commit_with_the_counts_of_sources_md(desk):
    root, results = desk["root"], desk["results"]
    assert commit_count(root) == desk["first"] + 3
    for name, (repo, issues, comments, pulls) in EXPECTED.items():
        got = results[name]
        assert (got["repo"], got["created"], got["comments"], got["skipped_pulls"], got["updated"]) \
            == (repo, issues, comments, pulls, 0), name
        assert got["commit"]
    subjects = git(root, "log", "-3", "--format=%s").splitlines()
    assert subjects == [
        "import github tlswg/draft-ietf-tls-esni: 250 new, 0 updated, 1260 comments",
        "import github quicwg/multipath: 304 new, 0 updated, 1350 comments",
        "import github tlswg/tls13-spec: 446 new, 0 updated, 963 comments",
    ]


def test_1000_issues_and_3573_comments_with_numbers_then_fresh_ids(desk):
    root, results = desk["root"], desk["results"]
    folders = sorted(int(p.name) for p in (root / "issues").iterdir() if p.name.isdigit())
    comment_files = [p for p in (root / "issues").rglob("*.md") if p.name != "issue.md"]
    assert (len(folders), len(comment_files)) == (1000, 3573)
    tls13 = [i["id"] for i in results["tlswg-tls13-spec"]["issues"]]
    assert tls13 == [i["number"] for i in results["tlswg-tls13-spec"]["issues"]]  # all were free
    top = max(tls13)
    multipath = sorted(i["id"] for i in results["quicwg-multipath"]["issues"])
    esni = sorted(i["id"] for i in results["tlswg-draft-ietf-tls-esni"]["issues"])
    assert multipath == list(range(top + 1, top + 305))  # clashes: new ids after the highest
    assert esni == list(range(top + 305, top + 555))
    assert folders == sorted(tls13 + multipath + esni)


def test_every_issue_matches_its_archive_record_and_pulls_are_left_out(desk):
    root, results = desk["root"], desk["results"]
    for name in EXPECTED:
        data = archive(name)
        ids = {i["source"]: i["id"] for i in results[name]["issues"]}
        assert set(ids) == {record["url"] for record in data["issues"]}
        assert not {p["url"] for p in data["pulls"]} & set(ids)
        assert all("/pull/" not in url for url in ids)
        for record in data["issues"]:
            folder = root / "issues" / str(ids[record["url"]])
            text = (folder / "issue.md").read_text(encoding="utf-8")
            assert f"source: {record['url']}\n" in text
            assert "visibility: public\n" in text
            assert ("status: closed\n" in text) == (record["state"] == "CLOSED"), record["url"]
            comments = [p for p in folder.iterdir() if p.name != "issue.md"]
            assert len(comments) == len(record["comments"]), record["url"]
    for path in (root / "issues").rglob("*.md"):
        assert b"\r" not in path.read_bytes(), path  # 497 of the bodies came with CRLF


def test_check_finds_nothing(desk):
    result = desk["cli"]("gitdesk", "check", "--json")
    assert json.loads(result.stdout) == []


def test_reimport_of_each_archive_makes_no_commit(desk):
    root, cli = desk["root"], desk["cli"]
    head = git(root, "rev-parse", "HEAD")
    for name, (_, issues, _, _) in EXPECTED.items():
        out = cli("gitdesk", "import", "github", str(ARCHIVES / name / "archive.json"), "--json")
        got = json.loads(out.stdout)
        assert (got["commit"], got["created"], got["updated"], got["unchanged"], got["comments"]) == \
            (None, 0, 0, issues, 0), name
    assert git(root, "rev-parse", "HEAD") == head
    assert git(root, "status", "--porcelain") == ""


def test_mkdocs_builds_the_site_of_1000_issues(desk):
    root, cli, results = desk["root"], desk["cli"], desk["results"]
    start = time.perf_counter()
    cli("gitdesk", "site", "build")
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in (root / "site").rglob("*") if f.is_file())
    print(f"\nsite build: {seconds:.1f} s, {size / 1e6:.1f} MB")
    site = root / "site"
    for page in ("index.html", "issues/index.html", "issues/closed/index.html", "kb/index.html",
                 "404.html", "sitemap.xml", "search/search_index.json"):
        assert (site / page).is_file(), page
    pages = [p for p in (site / "issues").iterdir() if p.name.isdigit()]
    assert len(pages) == 1000
    for name in EXPECTED:
        issues = results[name]["issues"]
        for sample in (issues[0], issues[len(issues) // 2], issues[-1]):
            html = (site / "issues" / str(sample["id"]) / "index.html").read_text(encoding="utf-8")
            assert f"#{sample['id']}" in html
    assert not os.path.exists(root / "site-staff")
