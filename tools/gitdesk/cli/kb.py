"""The ``kb`` command: the knowledge base."""

from __future__ import annotations

import click

from ..kb import actions
from . import search as search_cli
from .common import clean, get_tracker, json_option, print_json, read_text, root_group, run_program, table


@root_group("kb", "Write and read knowledge-base articles.")
def main(ctx: click.Context) -> None:
    pass


@main.command("new")
@click.argument("title", required=False)
@click.option("--internal", is_flag=True, help="Staff only: never published.")
@click.option("-l", "--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--slug", help="The file name (default: made from the title).")
@click.option("-m", "--message", multiple=True, help="The article text.")
@click.option("-F", "--file", "file", help="Read the text from FILE (- for stdin).")
@click.option("-e", "--edit", is_flag=True, help="Write the text in $EDITOR.")
@click.option("--from", "from_issue", metavar="ID",
              help="Draft an internal article from this issue (title, description, public comments).")
@json_option
@click.pass_context
def new_cmd(ctx, title, internal, tags, slug, message, file, edit, from_issue, as_json):
    """Write a new article titled TITLE (public unless --internal), or draft one --from an issue."""
    tracker = get_tracker(ctx)
    tags = [x for tag in tags for x in tag.split(",")]
    if from_issue:
        if message or file or edit:
            raise click.UsageError("--from writes the text itself; change it afterwards with kb edit")
        article = actions.new_from_issue(tracker, from_issue, title=title, slug=slug, tags=tags or None)
    elif not title:
        raise click.UsageError("Missing argument 'TITLE' (or give --from ID).")
    else:
        body = read_text(message, file, edit) or ""
        article = actions.new_article(tracker, title, internal=internal, tags=tags, body=body, slug=slug)
    if as_json:
        print_json(article.to_json(with_body=True))
    else:
        click.echo(f"{article.slug} {article.path} ({article.visibility})")


@main.command("list")
@click.option("-l", "--tag", "tags", multiple=True, help="Only articles with this tag.")
@click.option("--visibility", type=click.Choice(["public", "internal"]))
@json_option
@click.pass_context
def list_cmd(ctx, tags, visibility, as_json):
    """List articles."""
    tracker = get_tracker(ctx)
    articles, errors = tracker.kb.load_all()
    for err in errors:
        click.echo(f"warning: skipped {err}", err=True)
    wanted = [x.strip().lower() for tag in tags for x in tag.split(",") if x.strip()]
    chosen = [a for a in articles if all(t in {have.lower() for have in a.tags} for t in wanted)
              and (not visibility or a.visibility == visibility)]
    if as_json:
        print_json([a.to_json() for a in chosen])
        return
    table([[a.slug, a.visibility, clean(", ".join(a.tags)), clean(a.title)] for a in chosen],
          ["SLUG", "VISIBILITY", "TAGS", "TITLE"])


@main.command("show")
@click.argument("slug")
@json_option
@click.pass_context
def show_cmd(ctx, slug, as_json):
    """Show an article."""
    article = get_tracker(ctx).kb.load(slug)
    if as_json:
        print_json(article.to_json(with_body=True))
        return
    click.echo(click.style(clean(article.title), bold=True))
    tags = f" · tags: {', '.join(article.tags)}" if article.tags else ""
    issues = f" · issues: {', '.join(f'#{n}' for n in article.issues)}" if article.issues else ""
    click.echo(clean(f"{article.visibility}{tags}{issues}\n"))
    click.echo(clean(article.body))


@main.command("edit")
@click.argument("slug")
@click.option("-F", "--file", "file", help="Take the new file text from FILE instead of $EDITOR.")
@click.pass_context
def edit_cmd(ctx, slug, file):
    """Edit an article in $EDITOR; the result is checked before it is committed."""
    from .editing import edit_document

    tracker = get_tracker(ctx)
    article = tracker.kb.load(slug)

    def apply(text: str, base: str | None) -> str:
        _, changed = actions.replace_text(tracker, slug, text, base=base)
        return f"kb {slug}: edited: {changed}" if changed else f"kb {slug}: no changes"

    edit_document(tracker, tracker.root / article.path, f"kb-{slug}", apply, file)


for _command in search_cli.KB_COMMANDS:  # kb search
    main.add_command(_command)


def program() -> None:
    """The ``kb`` command (the console script)."""
    run_program(main)
