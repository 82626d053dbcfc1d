"""The injection corpus: values a hostile or careless user might put where bildsuche takes text.

Shared by every surface the battery attacks (dbt vars, saved-search names and
texts, file and store paths, the BI endpoint's parameters, settings and
headers); a new surface reuses these lists and adds its own shapes.  None of
them may change stored data, reach outside its intended use, or crash a tool.
"""

from __future__ import annotations

# Strings: quoting, comments, statement breaks, template syntax, format strings,
# control characters, look-alike quotes, bidirectional text, length.
STRINGS: tuple[str, ...] = (
    "x' OR 1=1 --",
    "' OR '1'='1",
    "'; DROP TABLE raw.photos; --",
    "back\\slash'); DROP TABLE raw.photos; --",
    "\\",
    "\\'",
    "'",
    "''",
    '"',
    '" OR ""="',
    "`",
    "`; DROP TABLE raw.photos; --`",
    "p0005' --",
    "p0005'/*",
    "*/ OR 1=1 /*",
    "-- comment",
    "# hash comment",
    "1; SELECT 1",
    "1) UNION ALL SELECT photo_id FROM raw.photos --",
    "' UNION ALL SELECT name FROM system.tables --",
    "' || file('/etc/passwd') || '",
    "' || sleep(3) || '",
    "{pid:String}",
    "{{ 7 * 7 }}",
    "{{ run_query('drop table raw.photos') }}",
    "{% do run_query('drop table raw.photos') %}",
    "%s",
    "%(photo_id)s",
    "$1 ? :name",
    "\\x27 OR 1=1",
    "%27 OR 1=1",
    "\\0 nul escape",
    "a\x00'; DROP TABLE raw.photos; --",
    "line\nbreak'; DROP TABLE raw.photos; --",
    "carriage\r\nX-Injected: 1",
    "tab\there",
    "\u02bc OR 1=1 --",  # modifier letter apostrophe
    "\uff07 OR 1=1 --",  # fullwidth apostrophe
    "\u202e' OR 1=1 -- \u202c",  # right-to-left override
    "ümlaut ß 漢字 🙂",  # a character outside the BMP: JSON writes it as a surrogate pair
    "del\x7f c1\x85 ls\u2028 controls",  # characters YAML refuses raw
    "-leading-dash",
    "--target=evil",
    "../../etc/passwd",
    "NULL",
    "x" * 5000,
)

# Values for integer vars (top_k and the like): only a whole number in range may pass.
INTEGERS: tuple[str, ...] = (
    "10; DROP TABLE raw.photos",
    "0",
    "-3",
    "ten",
    "1e3",
    "10.5",
    "0x10",
    "100001",
    "99999999999999999999999",
    "",
    " ",
    "1 OR 1=1",
    "10)",
    "²",
    "{{ 5 }}",
)

# Setting names and values a client may send to the BI endpoint.
SETTING_NAMES: tuple[str, ...] = (
    "max_threads; DROP TABLE x",
    "readonly",
    "max_execution_time = 0, readonly",
    "MAX_RESULT_ROWS",
    "x' OR 1=1 --",
    "no_such_setting",
    "",
)
LIMIT_VALUES: tuple[str, ...] = ("0", "-1", "inf", "-inf", "nan", "1e400", "", "x", "0.0", "1e-400", "99999999999")


def printable() -> list[str]:
    """The strings allowed where a printable name is required (saved-search names)."""
    return [s for s in STRINGS if s.isprintable() and len(s) <= 200]


def file_names() -> list[str]:
    """The strings that can name one file or folder."""
    return [s for s in STRINGS if "/" not in s and "\x00" not in s and len(s.encode()) < 250 and s not in (".", "..")]


def photo_ids() -> list[str]:
    """The strings used as photo ids of the battery's store (all of them: ids are free text)."""
    return list(dict.fromkeys(STRINGS))
