"""``kapacitor redact``: what the rules would mask in a text, for testing a rule."""

from __future__ import annotations

import json
import sys

import click

from kapacitor.normalize import redact


@click.command("redact")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--findings", is_flag=True, help="List what would be masked (line, column, kind, marker) instead of the text.")
@click.option("--json", "as_json", is_flag=True, help="The findings as JSON: line, column, kind, marker, length.")
def redact_command(source: str, findings: bool, as_json: bool) -> None:
    """Print FILE (or standard input) as Kapacitor would store it: every secret
    the rules find replaced by a marker such as [REDACTED github-pat #3f9a1c]
    (the kind, and a short hash keyed per installation that links two mentions
    of one secret without revealing it).

    Uses the same rules as the hook, import and ingest: the rule files shipped
    with Kapacitor plus the "redaction" section of the client config file
    (extra rules, allowlist, directories where redaction is off; see
    docs/redaction.md). Nothing is stored or sent. Exits 0 either way.
    """
    try:
        if source == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        rules = redact.default()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    text = data.decode("utf-8", "surrogateescape")
    masked, found = rules.mask(text)
    if not (findings or as_json):
        sys.stdout.buffer.write(masked.encode("utf-8", "surrogateescape"))
        return
    rows = []
    for f in found:
        line = text.count("\n", 0, f.start) + 1
        column = f.start - (text.rfind("\n", 0, f.start) + 1) + 1
        rows.append({"line": line, "column": column, "kind": f.rule, "marker": rules.marker(f.rule, f.secret),
                     "length": f.end - f.start})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("nothing to mask")
    else:
        for row in rows:
            click.echo(f"{source}:{row['line']}:{row['column']}: {row['kind']} ({row['length']} chars) -> {row['marker']}")
