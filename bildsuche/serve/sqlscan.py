"""Statement text as ClickHouse's lexer reads it: where one statement ends, where an
INSERT's inline data begins, and the tokens of the engine's own formatting.

Nothing here decides what may run (policy.py does, on the engine's parse tree):
this module finds the statement the engine is shown, and the data that is not
part of it.  Every scan skips string literals, quoted identifiers, heredocs and
comments as the engine's lexer does, and jumps between the characters that can
change its state with a regular expression, so a statement of a megabyte costs
microseconds, not the milliseconds a Python loop over its characters took
(docs/benchmarks.md, "Serve overhead").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# The only text at which the scan's state can change: found with str.find, which scans at memchr
# speed (a regular expression alternation of them took 10 ns a character).
MARKERS = ("'", '"', "`", ";", "#", "$", "--", "/*")
QUOTED = {
    "'": re.compile(r"'(?:[^'\\]|\\.)*'", re.S),
    '"': re.compile(r'"(?:[^"\\]|\\.)*"', re.S),
    "`": re.compile(r"`(?:[^`\\]|\\.)*`", re.S),
}
COMMENT_MARK = re.compile(r"/\*|\*/")
HEREDOC = re.compile(r"\$([A-Za-z0-9_]*)\$")
# An array literal of numbers (or text the engine will refuse to parse): it holds no name, function,
# quote or comment, so its values never change a statement's shape.
NUMBER_ARRAY = re.compile(r"\[[-+.eE,\s]*\d[-+0-9.eE,\s]*\]")
INSERT_START = re.compile(r"\s*insert\b", re.I)
FORMAT_CLAUSE = re.compile(r"\bformat\s+([A-Za-z_][A-Za-z0-9_]*)", re.I)
VALUES_CLAUSE = re.compile(r"\bvalues\b", re.I)
SELECT_WORD = re.compile(r"\b(?:select|with)\b", re.I)


class MultiStatementError(Exception):
    code = 62
    name = "SYNTAX_ERROR"


def _skip(sql: str, i: int) -> int | None:
    """The index after the quoted text, comment or heredoc starting at ``sql[i]``; ``i`` when none
    starts there; None when it never ends (the engine would refuse it, and so does the caller)."""
    ch = sql[i]
    if ch in QUOTED:
        found = QUOTED[ch].match(sql, i)
        return found.end() if found else None
    if ch == "#" or sql.startswith("--", i):
        newline = sql.find("\n", i)
        return len(sql) if newline < 0 else newline + 1
    if sql.startswith("/*", i):
        depth, at = 1, i + 2  # ClickHouse nests block comments
        while depth:
            mark = COMMENT_MARK.search(sql, at)
            if mark is None:
                return None
            depth += 1 if mark.group() == "/*" else -1
            at = mark.end()
        return at
    if ch == "$" and not (i and (sql[i - 1].isalnum() or sql[i - 1] in "_$")):
        heredoc = HEREDOC.match(sql, i)
        if heredoc:  # $$text$$ or $tag$text$tag$: a string literal with no escapes (`x$y$` is an identifier)
            close = sql.find(heredoc.group(0), heredoc.end())
            return None if close < 0 else close + len(heredoc.group(0))
    return i


class _Markers:
    """The next position of each marker at or after a point of ``sql``, found again only once passed."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.next = dict.fromkeys(MARKERS, -2)

    def first(self, i: int) -> int:
        best = -1
        for marker, at in self.next.items():
            if at != -1 and at < i:
                at = self.sql.find(marker, i)
                self.next[marker] = at
            if at >= 0 and (best < 0 or at < best):
                best = at
        return best


def _spans(text: str, *, strict: bool) -> Iterator[tuple[int, int]]:
    """The stretches of ``text`` outside literals, quoted names, heredocs and comments, in order.

    At a quote or comment that does not end: ``strict`` raises MultiStatementError, else the
    stretches stop there (inline data may hold one).
    """
    start, i, n = 0, 0, len(text)
    markers = _Markers(text)
    while i < n:
        j = markers.first(i)
        if j < 0:
            break
        after = _skip(text, j)
        if after is None:
            if strict:
                raise MultiStatementError("Unterminated quoted text or comment")
            n = j
            break
        if after == j:  # `;` or a `$` that opens nothing
            i = j + 1
            continue
        if j > start:
            yield start, j
        start = i = after
    if n > start:
        yield start, n


def code_spans(sql: str) -> list[tuple[int, int]]:
    """The stretches of ``sql`` outside literals, quoted names, heredocs and comments.

    Raises MultiStatementError for text whose end the scan cannot reach (an
    unterminated quote or comment).
    """
    return list(_spans(sql, strict=True))


def single_statement(sql: str) -> str:
    """``sql`` without a trailing `;`, refusing anything after it.

    ClickHouse's HTTP interface takes one statement per request; the embedded
    engine would run every statement it is given, so the text is scanned here
    (string literals, heredocs, quoted identifiers and comments skipped, as the
    engine's lexer reads them) before it reaches the engine.  Text the scan
    cannot follow to its end (an unterminated quote or comment) is refused.
    """
    for start, end in code_spans(sql):
        semicolon = sql.find(";", start, end)
        if semicolon >= 0:
            rest = sql[semicolon + 1 :]
            if rest.strip() and any(rest[a:b].strip() for a, b in code_spans(rest)):
                raise MultiStatementError("Multi-statements are not allowed")
            return sql[:semicolon]
    return sql


def normalized(statement: str) -> str:
    """``statement`` with every array of plain numbers outside quotes and comments written as `[0]`.

    The engine's parse of the result has the same shape, every node but those literals'
    values the same: a 512-float vector costs the parser 0.6 ms, and its values never
    decide what a statement may do.  The text keeps its quoting: the arrays replaced hold
    no quote or comment characters.
    """
    if "[" not in statement:
        return statement
    parts, last = [], 0
    for start, end in code_spans(statement):
        for found in NUMBER_ARRAY.finditer(statement, start, end):
            parts.append(statement[last : found.start()])
            parts.append("[0]")
            last = found.end()
    parts.append(statement[last:])
    return "".join(parts)


@dataclass(frozen=True)
class InlineData:
    """An INSERT whose rows follow its text: ``head`` is the statement up to its FORMAT clause
    (or VALUES), ``format`` the input format, ``offset`` where the rows begin."""

    head: str
    format: str
    offset: int


def _data_start(text: str, i: int) -> int:
    """Where inline data begins after a FORMAT name or VALUES keyword ending at ``i``: blanks skipped,
    then one line break, as the engine reads it."""
    n = len(text)
    while i < n and text[i] in " \t\f":
        i += 1
    if i < n and text[i] == "\r":
        i += 1
    if i < n and text[i] == "\n":
        i += 1
    return i


def inline_data(text: str) -> InlineData | None:
    """The FORMAT (or VALUES) clause of an INSERT statement at the start of ``text``, after
    which the engine reads rows; None for other statements and for INSERT ... SELECT.

    Only code is searched (the clause cannot hide in a literal or a comment), and only up
    to the first clause: what follows is data, whatever it looks like.  Byte offsets are
    character offsets when the caller decodes bytes as latin-1.
    """
    spans: list[tuple[int, int]] = []
    for start, end in _spans(text, strict=False):
        if not spans and not text[start:end].strip():
            continue  # blanks between leading comments
        if not spans and not INSERT_START.match(text, start):
            return None
        spans.append((start, end))
        found = FORMAT_CLAUSE.search(text, start, end)
        values = VALUES_CLAUSE.search(text, start, end)
        if values is not None and (found is None or values.start() < found.start()):
            clause, fmt, after = values, "Values", values.end()
        elif found is not None:
            clause, fmt, after = found, found.group(1), found.end()
        else:
            continue
        # INSERT ... SELECT (a `values()` or FORMAT inside the query is no data clause)
        if any(SELECT_WORD.search(text, a, min(b, clause.start())) for a, b in spans if a < clause.start()):
            return None
        return InlineData(text[: clause.start()], fmt, _data_start(text, after))
    return None
