"""The `bildsuche` command line: one library call per subcommand, printed by the CLI.

    bildsuche build | query | keywords | load | dbt | demo | serve | report

`python -m python_embed` (build, query) and `python -m seeds_loader` (load)
are this same command line, limited to their own commands.  Library code
raises typed errors (bildsuche.errors); they are reported here in one line,
with their exit codes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bildsuche.cli import demo, embed, load, report, rundbt, serve
from bildsuche.cli.progress import end_unfinished_line
from bildsuche.errors import BildsucheError

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler


COMMANDS: dict[str, Command] = {
    "build": Command(
        "embed photos into a data set of parquet files (= python -m python_embed build)",
        embed.add_build_arguments,
        embed.build_command,
    ),
    "query": Command(
        "embed a text or an image as a saved search in raw.search_queries (= python -m python_embed query)",
        embed.add_query_arguments,
        embed.query_command,
    ),
    "keywords": Command(
        "embed the most searched keywords with the CLIP text tower into raw.keyword_embeddings, once per model "
        "(= python -m python_embed keywords)",
        embed.add_keywords_arguments,
        embed.keywords_command,
    ),
    "load": Command("load a data set into the raw tables (= python -m seeds_loader)", load.add_arguments, load.command),
    "dbt": Command(
        "run dbt on the bildsuche project (its models, profiles and store)", rundbt.add_arguments, rundbt.command
    ),
    "demo": Command(
        "offline end-to-end run on the embedded store: sample -> build -> load -> dbt build; prints the marts",
        demo.add_arguments,
        demo.command,
    ),
    "serve": Command(
        "ClickHouse HTTP endpoint over the embedded store: BI tools read, user writer writes",
        serve.add_arguments,
        serve.command,
    ),
    "report": Command(
        "the marts as an HTML page with pictures and a PNG contact sheet", report.add_arguments, report.command
    ),
}


def build_parser(prog: str = "bildsuche", commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Image-similarity analytics on ClickHouse with dbt.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for name in commands or COMMANDS:
        command = COMMANDS[name]
        # dbt's own options follow its command unparsed: argparse must not read them.
        prefix = "\0" if name == "dbt" else "-"
        child = sub.add_parser(name, help=command.help, description=command.help, prefix_chars=prefix)
        command.add_arguments(child)
        child.set_defaults(handler=command.handler)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, dispatch to the command's handler, report typed errors in one line."""
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BildsucheError as exc:
        end_unfinished_line()
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        end_unfinished_line()
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


def module_main(prog: str, commands: Sequence[str], argv: Sequence[str] | None = None) -> int:
    """The command line of a library folder run as a module (``python -m python_embed``):
    its commands only; a single command takes its arguments directly."""
    if len(commands) > 1:
        return run(build_parser(prog, commands), argv)
    command = COMMANDS[commands[0]]
    parser = argparse.ArgumentParser(prog=prog, description=command.help)
    command.add_arguments(parser)
    parser.set_defaults(handler=command.handler)
    return run(parser, argv)
