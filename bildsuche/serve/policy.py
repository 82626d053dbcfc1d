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


HEREDOC = re.compile(r"\$([A-Za-z0-9_]*)\$")


def _skip_quoted(sql: str, i: int) -> int | None:
    """The index after the quoted text, comment or heredoc starting at ``sql[i]``; ``i`` when none
    starts there; None when it never ends (the engine would refuse it, and so does the caller)."""
    n, ch = len(sql), sql[i]
    if ch in "'\"`":
        i += 1
        while i < n and sql[i] != ch:
            i += 2 if sql[i] == "\\" else 1
        return i + 1 if i < n else None
    if sql.startswith("--", i) or ch == "#":
        newline = sql.find("\n", i)
        return n if newline < 0 else newline + 1
    if sql.startswith("/*", i):
        depth, i = 1, i + 2  # ClickHouse nests block comments
        while i < n and depth:
            if sql.startswith("/*", i):
                depth, i = depth + 1, i + 2
            elif sql.startswith("*/", i):
                depth, i = depth - 1, i + 2
            else:
                i += 1
        return i if not depth else None
    heredoc = HEREDOC.match(sql, i) if ch == "$" and not (i and (sql[i - 1].isalnum() or sql[i - 1] in "_$")) else None
    if heredoc:  # $$text$$ or $tag$text$tag$: a string literal with no escapes (`x$y$` is an identifier)
        close = sql.find(heredoc.group(0), heredoc.end())
        return None if close < 0 else close + len(heredoc.group(0))
    return i


def single_statement(sql: str) -> str:
    """``sql`` without a trailing `;`, refusing anything after it.

    ClickHouse's HTTP interface takes one statement per request; the embedded
    engine would run every statement it is given, so the text is scanned here
    (string literals, heredocs, quoted identifiers and comments skipped, as the
    engine's lexer reads them) before it reaches the engine.  Text the scan
    cannot follow to its end (an unterminated quote or comment) is refused.
    """
    i, n = 0, len(sql)
    while i < n:
        after = _skip_quoted(sql, i)
        if after is None:
            raise MultiStatementError("Unterminated quoted text or comment")
        if after != i:
            i = after
        elif sql[i] == ";":
            if _only_comments(sql[i + 1 :]):
                return sql[:i]
            raise MultiStatementError("Multi-statements are not allowed")
        else:
            i += 1
    return sql


def _only_comments(text: str) -> bool:
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if not (text.startswith(("--", "#", "/*"), i)):
            return False
        after = _skip_quoted(text, i)
        if after is None:
            return False
        i = after
    return True
