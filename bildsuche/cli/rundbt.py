"""`bildsuche dbt ARGS...`: dbt on the bildsuche project, wherever it is installed.

The same as running `dbt ARGS...` in a checkout; an installed package carries
the project inside itself, and dbt then writes its target/ and logs/ under the
data folder instead.  On a ClickHouse cluster (CLICKHOUSE_CLUSTER) the cluster
is checked first: dbt-clickhouse's first query already reads every node, and
fails on an unknown cluster or a downed shard with the engine's words.
"""

from __future__ import annotations

import argparse

from bildsuche import config
from bildsuche.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, help="a dbt command and its options, e.g. build --select photos"
    )


def dbt_target(dbt_args: list[str]) -> str:
    """The profiles.yml target ``dbt_args`` choose (--target/-t), else the default one."""
    for i, arg in enumerate(dbt_args):
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
        if arg in ("--target", "-t") and i + 1 < len(dbt_args):
            return dbt_args[i + 1]
    return config.default_target()


def command(args: argparse.Namespace) -> int:
    from bildsuche.dbt import run_dbt
    from bildsuche.store import check_cluster, client_for

    if not args.args:
        raise UsageError("give a dbt command and its options, for example `bildsuche dbt build --select photos`")
    target = dbt_target(args.args)
    cluster = config.cluster_name(target)
    if cluster:
        with client_for(target) as client:
            check_cluster(client, cluster)
    run_dbt(args.args)
    return 0
