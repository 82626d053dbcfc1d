"""`bildsuche dbt ARGS...`: dbt on the bildsuche project, wherever it is installed.

The same as running `dbt ARGS...` in a checkout; an installed package carries
the project inside itself, and dbt then writes its target/ and logs/ under the
data folder instead.
"""

from __future__ import annotations

import argparse

from bildsuche.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, help="a dbt command and its options, e.g. build --select photos"
    )


def command(args: argparse.Namespace) -> int:
    from bildsuche.dbt import run_dbt

    if not args.args:
        raise UsageError("give a dbt command and its options, for example `bildsuche dbt build --select photos`")
    run_dbt(args.args)
    return 0
