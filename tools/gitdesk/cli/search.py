"""The search and KB-answer commands: ``issue search/link/suggest/reply`` and ``kb search``."""

from __future__ import annotations

import click

from .common import (
    clean,
    color_status,
    filter_options,
    get_tracker,
    json_option,
    print_json,
    read_text,
    table,
)

QUERY_HELP = ('QUERY is words (all must match), "quoted phrases", word* (words starting so), '
              "-word (without it) and OR between two words. Quote a query that has a -word: "
              "issue search 'nginx -apache'.")


def _limit_option(default: int):
    return click.option("-n", "--limit", type=int, default=default, show_default=True,
                        help="Show at most N results (0: all).")


def _public_option(help_text: str):
    return click.option("--public", is_flag=True, help=help_text)


def _marked(hit) -> str:
    """The snippet, the matching words in bold."""
    out, last = [], 0
    for start, end in hit.matches:
        out += [clean(hit.snippet[last:start]), click.style(clean(hit.snippet[start:end]), bold=True)]
        last = end
    out.append(clean(hit.snippet[last:]))
    return "".join(out)


def _echo_hits(results, heading, noun: str) -> None:
    for warning in results.warnings:
        click.echo(f"warning: {clean(warning)}", err=True)
    if not results.hits:
        click.echo(f"No {noun} match.", err=True)
        return
    for hit in results.hits:
        click.echo(heading(hit))
        if hit.snippet:
            where = click.style("internal note", fg="red") if hit.internal else hit.where
            click.echo(f"    {where}: {_marked(hit)}")
    if results.total > len(results.hits):
        click.echo(f"Showing {len(results.hits)} of {results.total} matches; -n 0 shows all.", err=True)


@click.command("search", epilog=QUERY_HELP)
@click.argument("query", nargs=-1, required=True)
@filter_options
@click.option("--open", "state", flag_value="open", help="Open issues only.")
@click.option("--closed", "state", flag_value="closed", help="Closed issues only.")
@click.option("--all", "state", flag_value="all", default=True, help="Open and closed (the default).")
@_public_option("Only what the public site shows: public issues and their public comments.")
@_limit_option(20)
@json_option
@click.pass_context
def issue_search_cmd(ctx, query, statuses, types, labels, assignee, priorities, customer, state,
                     public, limit, as_json):
    """Search issues: titles, labels, descriptions, comments and internal notes, best first."""
    from ..index.search import search_issues
    from ..issues.actions import resolve_user
    from ..issues.query import IssueQuery

    tracker = get_tracker(ctx)
    filters = IssueQuery(state=state, statuses=statuses, types=types, priorities=priorities,
                         labels=[x.strip() for lab in labels for x in lab.split(",") if x.strip()],
                         customer=customer, assignee=resolve_user(tracker, assignee) if assignee else None,
                         unassigned=assignee in ("none", "-"))
    results = search_issues(tracker, " ".join(query), filters, public=public, limit=limit)
    if as_json:
        print_json([hit.to_json() for hit in results.hits])
        return
    schema = tracker.settings.schema

    def heading(hit) -> str:
        data = hit.data
        labels = f"  [{', '.join(data['labels'])}]" if data["labels"] else ""
        return (f"#{data['id']}  {color_status(data['status'], schema.is_closed(data['status']))}  "
                + clean(f"{data['title']}{labels}"))

    _echo_hits(results, heading, "issues")


@click.command("search", epilog=QUERY_HELP)
@click.argument("query", nargs=-1, required=True)
@click.option("-l", "--tag", "tags", multiple=True, help="Only articles with this tag.")
@_public_option("Only public articles (what the site shows).")
@_limit_option(20)
@json_option
@click.pass_context
def kb_search_cmd(ctx, query, tags, public, limit, as_json):
    """Search knowledge-base articles: titles, tags and text, best first."""
    from ..index.search import search_articles

    tracker = get_tracker(ctx)
    tags = tuple(x.strip() for tag in tags for x in tag.split(",") if x.strip())
    results = search_articles(tracker, " ".join(query), public=public, tags=tags, limit=limit)
    if as_json:
        print_json([hit.to_json() for hit in results.hits])
        return
    _echo_hits(results, lambda hit: clean(f"{hit.data['slug']}  {hit.data['visibility']}  "
                                          f"{hit.data['title']}"), "articles")


@click.command("link")
@click.argument("issue_id")
@click.option("--kb", "slug", required=True, metavar="SLUG", help="The article.")
@click.option("--remove", is_flag=True, help="Unlink them instead.")
@click.pass_context
def link_cmd(ctx, issue_id, slug, remove):
    """Link an issue and a KB article both ways (the issue's kb list, the article's issues)."""
    from ..kb import actions

    issue, _, changes = actions.link(get_tracker(ctx), issue_id, slug, remove=remove)
    for line in changes:
        click.echo(clean(line))
    if not changes:
        click.echo(f"#{issue.id} and kb {slug}: {'not linked' if remove else 'already linked'}")


@click.command("suggest")
@click.argument("issue_id")
@_public_option("Only public articles (those a customer can read).")
@_limit_option(5)
@json_option
@click.pass_context
def suggest_cmd(ctx, issue_id, public, limit, as_json):
    """KB articles that may answer an issue, found from its title, description and public comments."""
    from ..index.search import suggest_articles
    from ..issues.store import parse_id

    tracker = get_tracker(ctx)
    issue = tracker.issues.load(parse_id(issue_id))
    results = suggest_articles(tracker, issue.id, public=public, limit=limit)
    if as_json:
        print_json([{**hit.to_json(), "linked": hit.data["slug"] in issue.kb} for hit in results.hits])
        return
    for warning in results.warnings:
        click.echo(f"warning: {clean(warning)}", err=True)
    if not results.hits:
        click.echo(f"No article looks like #{issue.id}.", err=True)
        return
    click.echo(clean(f"Articles like #{issue.id} (words: {', '.join(results.terms)})"))
    table([[f"{hit.score:.2f}", clean(hit.data["slug"]), hit.data["visibility"],
            "linked" if hit.data["slug"] in issue.kb else "-", clean(hit.data["title"])]
           for hit in results.hits], ["SCORE", "SLUG", "VISIBILITY", "LINKED", "TITLE"])


@click.command("reply")
@click.argument("issue_id")
@click.option("--kb", "slug", required=True, metavar="SLUG", help="The public article that answers it.")
@click.option("-m", "--message", multiple=True, metavar="TEXT", help="Your words before the article.")
@click.option("-F", "--file", "file", metavar="FILE", help="Read your words from FILE (- for stdin).")
@json_option
@click.pass_context
def reply_cmd(ctx, issue_id, slug, message, file, as_json):
    """Answer an issue with a KB article: a public comment quoting its summary and link."""
    from ..issues.store import parse_id
    from ..kb import actions

    tracker = get_tracker(ctx)
    comment = actions.reply(tracker, issue_id, slug, read_text(message, file) or "")
    if as_json:
        print_json(comment.to_json())
    else:
        path = tracker.issues.comment_path(parse_id(issue_id), comment.id)
        click.echo(f"comment {path} (kb {slug})")


ISSUE_COMMANDS = (issue_search_cmd, link_cmd, suggest_cmd, reply_cmd)
KB_COMMANDS = (kb_search_cmd,)
