"""The layering rules of the manual's architecture article, checked by reading imports."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tools" / "gitdesk"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def _uses_yaml(tree) -> bool:
    return any(name == "yaml" or name.startswith("yaml.") for name in _imports(tree))


def _runs_git(source: str) -> bool:
    return '["git"' in source or "'git'," in source


def test_only_core_document_uses_yaml():
    users = [name for name, tree in _modules() if _uses_yaml(tree)]
    assert users == ["core/document.py"]


def test_only_core_repo_runs_git():
    users = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
             if _runs_git(p.read_text(encoding="utf-8"))]
    assert users == ["core/repo.py"]


def test_mkdocs_is_imported_only_by_the_site_adapter():
    users = sorted(name for name, tree in _modules()
                   if any(n == "mkdocs" or n.startswith("mkdocs.") for n in _imports(tree)))
    assert users == ["site/build.py", "site/mkdocs_hooks.py", "site/serve.py"]


@pytest.mark.parametrize("layer", ["core/", "issues/", "kb/", "index/", "config.py", "queueconfig.py",
                                   "errors.py", "reports.py"])
def test_the_domain_knows_nothing_of_its_interfaces(layer):
    """core, issues and kb never import click, the CLI, the site or the importers."""
    for name, tree in _modules():
        if not name.startswith(layer):
            continue
        for imported in _imports(tree):
            bare = imported.lstrip(".")
            assert not bare.startswith(("click", "cli", "site", "importers", "mkdocs", "nh3")), \
                f"{name} imports {imported}"


def test_interfaces_do_not_reach_into_git_or_yaml():
    for name, tree in _modules():
        if name.startswith(("cli/", "site/", "importers/")):
            for imported in _imports(tree):
                assert not imported.endswith(("core.repo", "core.document")), f"{name} imports {imported}"


def test_issue_list_does_not_load_mkdocs_or_the_site():
    code = ("import sys; from gitdesk.cli import issue; "
            "bad = [m for m in sys.modules if m.startswith(('mkdocs', 'gitdesk.site', 'markdown', 'nh3'))]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("args, forbidden", [
    (["list"], ("mkdocs", "aiosmtpd", "gitdesk.mail", "gitdesk.site", "email", "smtplib", "ssl",
                "markdown", "nh3", "multiprocessing")),
    (["queue"], ("mkdocs", "aiosmtpd", "gitdesk.mail", "gitdesk.site", "email", "smtplib", "markdown")),
    (["show", "1"], ("mkdocs", "aiosmtpd", "gitdesk.mail", "gitdesk.site", "gitdesk.index", "sqlite3", "email")),
    (["new", "Nobody to tell", "-m", "x"], ("mkdocs", "aiosmtpd", "gitdesk.site", "email", "smtplib", "ssl")),
], ids=["list", "queue", "show", "new"])
def test_commands_import_only_what_they_use(tracker_dir, args, forbidden):
    """Run for real (the index warm, so a first build's worker processes do not count)."""
    env = dict(os.environ, GITDESK_DIR=str(tracker_dir))
    for warm in (["new", "First", "-m", "x"], ["list"]):
        subprocess.run([sys.executable, "-c", f"from gitdesk.cli.issue import main; main({warm!r})"], env=env,
                       capture_output=True, text=True)
    code = "\n".join([
        "import sys",
        "from gitdesk.cli.issue import main",
        "try:",
        f"    main({args!r})",
        "except SystemExit as e:",
        "    code = e.code",
        f"bad = [m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {forbidden!r})]",
        "print(code, sorted(bad), file=sys.stderr)"])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stderr.strip().splitlines()[-1] == "0 []", done.stderr
