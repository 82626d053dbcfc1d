"""Values and names placed into ClickHouse SQL text, quoted so they stay one token.

The dbt side has the same rule in macros/literals.sql (`sql_string`); the
property tests of tests/python/reliability check both against the engine.
"""

from __future__ import annotations


def _escape(text: str, quote: str) -> str:
    # Backslash first: the escapes added after it must stay escapes.
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote)


def string_literal(value: str) -> str:
    """``value`` as a ClickHouse string literal: 'it\\'s'."""
    return "'" + _escape(value, "'") + "'"


def identifier(name: str) -> str:
    """``name`` as a back-quoted ClickHouse identifier, whatever characters it holds."""
    return "`" + _escape(name, "`") + "`"
