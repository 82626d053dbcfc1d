"""What a command costs before it does anything: Python imports of the store opener, each
layer, the dbt plugin, and `--help` of the command line; each in a fresh interpreter,
side by side, median of --repeats rounds.

    python benchmarks/startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import json
import sys

from measure import machine, median, timed

CASES = {
    "python alone": "pass",
    "store opener (dbt.adapters.chdb.engine)": "import dbt.adapters.chdb.engine",
    "base layer (bildsuche.store)": "import bildsuche.store",
    "seeds_loader": "import seeds_loader",
    "python_embed.build": "import python_embed.build",
    "dbt plugin (dbt.adapters.chdb.Plugin)": "import dbt.adapters.chdb as p; p.Plugin",
    "bildsuche --help": "import sys; from bildsuche.cli import main; sys.argv = ['bildsuche']; "
    "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n    try: main(['--help'])\n"
    "    except SystemExit: pass",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeats):  # rounds interleave the cases: load changes hit them alike
        for name, code in CASES.items():
            times[name].append(timed([sys.executable, "-c", code]).seconds * 1000)
    rows = {name: round(median(values), 1) for name, values in times.items()}
    print(json.dumps({"machine": machine(), "repeats": args.repeats, "median_ms": rows}, indent=2))
    print("\n| import | median ms |\n| --- | ---: |")
    for name, value in rows.items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
