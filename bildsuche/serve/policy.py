"""What a read-only endpoint may run, decided on ClickHouse's own parse tree.

readonly = 1 stops writes, DDL, SYSTEM and the table functions that reach
files, URLs and other servers.  Four things it lets through are refused here,
on the output of `EXPLAIN AST`: statements other than reads (KILL QUERY ...),
`INTO OUTFILE` (a write to the server's disk), table functions outside a list
of harmless generators (chDB's `python()` reads objects of the serving
process), and the scalar function `file()`, which returns the content of any
file the serving process may read.
"""

from __future__ import annotations

import re

ALLOWED_STATEMENTS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "Show", "Describe", "Exists", "Explain")
SAFE_TABLE_FUNCTIONS = frozenset(
    {
        "numbers", "numbers_mt", "zeros", "zeros_mt", "generateRandom", "generate_series", "generateSeries",
        "values", "view", "viewIfPermitted", "merge", "null", "format",
    }
)  # fmt: skip
# Scalar functions refused anywhere in a statement (ClickHouse matches these names case-insensitively).
FORBIDDEN_FUNCTIONS = frozenset({"file"})
LINE = re.compile(r"^(?P<indent> *)(?P<node>\S+)(?: (?P<rest>.*))?$")


class PolicyError(Exception):
    """A statement the endpoint refuses; ``code`` is ClickHouse's READONLY."""

    code = 164
    name = "READONLY"


def check(ast: str) -> list[str]:
    """Raise PolicyError unless the `EXPLAIN AST` text describes a plain read.

    Returns the names called in table position that are not harmless
    generators: parameterized views (`analytics.neighbours(photo_id = …)`) parse
    like table functions, so the caller must find each among the store's views.
    """
    lines = [LINE.match(line) for line in ast.splitlines() if line.strip()]
    nodes = [m for m in lines if m]
    if not nodes:
        raise PolicyError("empty query")
    top = nodes[0]["node"]
    if not top.startswith(ALLOWED_STATEMENTS):
        raise PolicyError(f"{top} is not allowed on a read-only endpoint")
    called: list[str] = []
    for i, match in enumerate(nodes):
        depth = len(match["indent"])
        # INTO OUTFILE hangs a literal (the file name) directly under the statement, for every kind of
        # statement allowed here: EXPLAIN, SHOW, DESCRIBE and EXISTS write their answer to the file too.
        if depth == 1 and match["node"] == "Literal":
            raise PolicyError("INTO OUTFILE is not allowed on a read-only endpoint")
        if match["node"] == "Function" and (match["rest"] or "").split(" ")[0].lower() in FORBIDDEN_FUNCTIONS:
            raise PolicyError(
                f"function {(match['rest'] or '').split(' ')[0]}() is not allowed on a read-only endpoint"
            )
        if match["node"] == "TableExpression" and i + 1 < len(nodes):
            child = nodes[i + 1]
            if child["node"] == "Function":
                name = (child["rest"] or "").split(" ")[0]
                if name not in SAFE_TABLE_FUNCTIONS:
                    called.append(name)
    return called


class MultiStatementError(Exception):
    code = 62
    name = "SYNTAX_ERROR"


def single_statement(sql: str) -> str:
    """``sql`` without a trailing `;`, refusing anything after it.

    ClickHouse's HTTP interface takes one statement per request; the embedded
    engine would run every statement it is given, so the text is scanned here
    (string literals, quoted identifiers and comments skipped) before it
    reaches the engine.
    """
    i, n = 0, len(sql)
    end = None
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            i += 1
            while i < n and sql[i] != ch:
                i += 2 if sql[i] == "\\" else 1
            i += 1
        elif sql.startswith("--", i) or ch == "#":
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close < 0 else close + 2
        elif ch == ";":
            end = i
            break
        else:
            i += 1
    if end is None:
        return sql
    rest = sql[end + 1 :]
    if _only_comments(rest):
        return sql[:end]
    raise MultiStatementError("Multi-statements are not allowed")


def _only_comments(text: str) -> bool:
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i) or text[i] == "#":
            newline = text.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close < 0:
                return True
            i = close + 2
        else:
            return False
    return True
