"""What an account may run, decided on ClickHouse's own parse of the statement.

The tree is the engine's `EXPLAIN AST`.  Readers (`default`) run on handles with
readonly = 1, which stops writes, DDL, SYSTEM and the table functions that reach
files, URLs and other servers; what readonly lets through is refused here:
statements other than reads (KILL QUERY ...), `INTO OUTFILE` (a write to the
machine's disk), table functions outside a list of harmless generators (chDB's
`python()` reads objects of the serving process), and the scalar functions
that read files or name tables by strings (`file()`, `hasColumnInTable()`,
`joinGet()`).

The writer runs without readonly, so everything that reaches the machine is
refused here, for every statement: the same functions, table engines outside
a list of ones that keep their data in the store (File, URL, Executable, ...),
database engines other than Atomic and Memory, dictionaries (their sources read
files and URLs), `INSERT INTO FUNCTION`, `FROM INFILE`, ATTACH, DETACH, BACKUP,
SYSTEM, and settings that name files.  `EXPLAIN AST` prints some parts of a
statement as bare nodes (a `SETTINGS` clause is `Set`; `CREATE TABLE t AS src`
names no `src`; `DROP` and `DETACH` look alike), so writer statements are also
read in the engine's own formatting of them (`formatQuerySingleLine`), as tokens.

Database `default` of the embedded engine also answers names that are paths
on the machine (`` `/etc/passwd` ``; globs such as `*`): a name that holds `/`
or a glob character is no table here, for either account (the engine is
started in an empty directory, so relative names find no file either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

READ_STATEMENTS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "Show", "Describe", "Exists", "Explain")
WRITE_STATEMENTS = frozenset(
    {
        "InsertQuery", "CreateQuery", "AlterQuery", "DropQuery", "Rename", "OptimizeQuery", "TruncateQuery",
        "CreateSQLFunctionQuery", "DropFunctionQuery", "Set", "DeleteQuery",
    }
)  # fmt: skip
# Statements whose direct Literal child is INTO OUTFILE or FROM INFILE (for CREATE it is a COMMENT).
FILE_CLAUSE_STATEMENTS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "Show", "Describe", "Exists",
                          "Explain", "InsertQuery")  # fmt: skip
SAFE_TABLE_FUNCTIONS = frozenset(
    {
        "numbers", "numbers_mt", "zeros", "zeros_mt", "generateRandom", "generate_series", "generateSeries",
        "values", "view", "viewIfPermitted", "merge", "null", "format",
    }
)  # fmt: skip
# Refused anywhere, in any case (ClickHouse matches function names case-insensitively): they read
# files, name tables by strings (which the name rule below cannot see), or create disks on any path.
FORBIDDEN_FUNCTIONS = frozenset({"file", "hascolumnintable", "joinget", "joingetornull", "disk"})
# Table (and database) engines that keep their data in the store.
TABLE_ENGINES = frozenset(
    {
        "MergeTree", "ReplacingMergeTree", "SummingMergeTree", "AggregatingMergeTree", "CollapsingMergeTree",
        "VersionedCollapsingMergeTree", "CoalescingMergeTree", "Memory", "Log", "TinyLog", "StripeLog", "Null",
        "Set", "Join",
    }
)  # fmt: skip
ENGINES = TABLE_ENGINES | {"Atomic"}  # Atomic: a database's
ALTER_COMMANDS = frozenset(
    {
        "ADD_COLUMN", "DROP_COLUMN", "MODIFY_COLUMN", "COMMENT_COLUMN", "RENAME_COLUMN", "MATERIALIZE_COLUMN",
        "ADD_INDEX", "DROP_INDEX", "MATERIALIZE_INDEX", "CLEAR_INDEX", "CLEAR_COLUMN", "ADD_CONSTRAINT",
        "DROP_CONSTRAINT", "ADD_PROJECTION", "DROP_PROJECTION", "MATERIALIZE_PROJECTION", "CLEAR_PROJECTION",
        "ADD_STATISTICS", "DROP_STATISTICS", "MODIFY_STATISTICS", "MATERIALIZE_STATISTICS", "CLEAR_STATISTICS",
        "DROP_PARTITION", "DROP_DETACHED_PARTITION", "REPLACE_PARTITION", "DELETE", "UPDATE",
        "MODIFY_ORDER_BY", "MODIFY_SAMPLE_BY", "MODIFY_SETTING", "RESET_SETTING", "MODIFY_COMMENT",
        "MODIFY_QUERY", "APPLY_DELETED_MASK",
    }
)  # fmt: skip
# Settings whose values are paths or URLs the engine would read or write.
DENIED_SETTINGS = frozenset(
    {
        "format_schema", "format_schema_source", "format_template_resultset", "format_template_row",
        "output_format_schema", "format_avro_schema_registry_url", "input_format_record_errors_file_path",
        "url_base", "s3queue_default_zookeeper_path",
    }
)  # fmt: skip
# Names that the engine's `default` database would read as paths (or globs) on the machine.
PATH_LIKE = re.compile(r"[/*?{}]")
LINE = re.compile(r"^(?P<indent> *)(?P<node>\S+)(?: (?P<rest>.*?))?(?: \(children \d+\))?$")


class PolicyError(Exception):
    """A statement the account may not run."""

    def __init__(self, message: str, *, code: int = 164, name: str = "READONLY") -> None:
        super().__init__(message)
        self.code, self.name = code, name


def refused(message: str, writer: bool) -> PolicyError:
    if writer:
        return PolicyError(f"{message} (the writer account writes the store and nothing else)", code=497,
                           name="ACCESS_DENIED")  # fmt: skip
    return PolicyError(f"{message} on a read-only endpoint")


@dataclass(frozen=True)
class Node:
    depth: int
    name: str
    rest: str


def parse_tree(ast: str) -> list[Node]:
    nodes = []
    for line in ast.splitlines():
        match = LINE.match(line)
        if match and line.strip():
            nodes.append(Node(len(match["indent"]), match["node"], match["rest"] or ""))
    return nodes


@dataclass(frozen=True)
class Verdict:
    """What the engine must be asked about a statement that may run (the store's catalog can change:
    these are checked for every request, the verdict itself cached)."""

    kind: str
    output_format: str | None  # a FORMAT clause of a read
    views: tuple[str, ...]  # names called in table position: they must be parameterized views of the store
    missing_table: str | None  # a name that can be no table here (a path): answered as a missing table
    describe: str | None  # DESCRIBE of a named table (a parameterized view is described by serve)
    writes: bool


def judge(ast: str, *, writer: bool, tokens: list[Token] | None = None) -> Verdict:
    """Raise PolicyError unless the account may run the statement `EXPLAIN AST` printed as ``ast``.

    ``tokens``: the engine's formatting of a writer's statement (see tokenize).
    """
    nodes = parse_tree(ast)
    if not nodes:
        raise PolicyError("empty query", code=62, name="SYNTAX_ERROR")
    top = nodes[0].name
    reading = top.startswith(READ_STATEMENTS)
    if not reading and not (writer and top in WRITE_STATEMENTS):
        raise refused(f"{top} is not allowed", writer)
    views: list[str] = []
    missing: str | None = None
    parents: list[Node] = []
    for i, node in enumerate(nodes):
        del parents[node.depth :]
        parent = parents[-1] if parents else None
        parents.append(node)
        name, called = node.name, node.rest.split(" ")[0]
        if name == "Literal" and parent is not None and parent.name.startswith(FILE_CLAUSE_STATEMENTS):
            raise refused("INTO OUTFILE and FROM INFILE are not allowed", writer)
        if name == "Function" and called.lower() in FORBIDDEN_FUNCTIONS:
            raise refused(f"function {called}() is not allowed", writer)
        if name == "Function" and parent is not None and _in_table_position(parent, nodes[0]):
            if parent.name == "InsertQuery":
                raise refused("INSERT INTO FUNCTION is not allowed", writer)
            if called not in SAFE_TABLE_FUNCTIONS:
                views.append(called)
        if name in ("TableIdentifier", "Identifier") and missing is None and PATH_LIKE.search(node.rest):
            missing = node.rest
        if name.startswith("Dictionary"):
            raise refused("dictionaries are not allowed", writer)
        if name == "Storage":
            _check_engine(nodes, i, writer)
        if name == "AlterCommand" and called not in ALTER_COMMANDS:
            raise refused(f"ALTER ... {called} is not allowed", writer)
    output_format = _output_format(nodes)
    if writer and tokens is not None:
        missing = missing or _check_tokens(tokens, top)
    describe = None
    if top == "DescribeQuery" and len(nodes) > 2 and nodes[2].name == "TableIdentifier":
        describe = nodes[2].rest
    return Verdict(top, output_format, tuple(views), missing, describe, writes=not reading)


def _output_format(nodes: list[Node]) -> str | None:
    """The FORMAT clause of a read, as serve needs it for the answers it gives itself (and the header)."""
    top = nodes[0]
    named = [node.rest for node in nodes[1:] if node.depth == 1 and node.name == "Identifier"]
    if top.name.startswith("Select") or top.name == "DescribeQuery":
        return named[-1] if named else None  # their only direct Identifier child is the FORMAT clause
    if top.name.startswith("ExistsTable"):
        # `EXISTS [db.]name [FORMAT f]`: the name's parts come first (the node reads "db name" or " name").
        parts = 1 if top.rest.startswith(" ") else 2
        return named[-1] if len(named) > parts else None
    return None


def _in_table_position(parent: Node, top: Node) -> bool:
    """A Function node with this parent is a table function (or a parameterized view): FROM f(...),
    INSERT INTO FUNCTION f(...), CREATE TABLE t AS f(...)."""
    return parent.name == "TableExpression" or (parent is top and parent.name in ("InsertQuery", "CreateQuery"))


def _check_engine(nodes: list[Node], i: int, writer: bool) -> None:
    first = nodes[i + 1] if i + 1 < len(nodes) and nodes[i + 1].depth == nodes[i].depth + 1 else None
    if first is None or first.name != "Function":
        raise refused("a table without an ENGINE clause is not allowed", writer)
    engine = first.rest.split(" ")[0]
    if engine not in ENGINES:
        raise refused(f"ENGINE = {engine} is not allowed", writer)


# --- the engine's formatting of a writer statement, as tokens --------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "word" (keyword or bare name), "name" (quoted name), "string", "number", "param", "punct"
    text: str  # a name without its quotes; a string with its quotes


TOKEN = re.compile(
    r"""\s*(?:
      (?P<name>`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")
    | (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<param>\{[^{}]*\})
    | (?P<number>\d[\w.]*(?:[eE][-+]?\d+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<punct>->|::|[^\s\w])
    )""",
    re.X | re.S,
)
UNESCAPE = re.compile(r"\\(.)", re.S)


def tokenize(text: str) -> list[Token]:
    tokens, i = [], 0
    text = text.rstrip()
    while i < len(text):
        found = TOKEN.match(text, i)
        if found is None or found.end() == i:
            raise PolicyError(f"cannot read the statement at {text[i : i + 20]!r}", code=62, name="SYNTAX_ERROR")
        kind = found.lastgroup or "punct"
        value = found.group(kind)
        if kind == "name":
            value = UNESCAPE.sub(r"\1", value[1:-1])
        tokens.append(Token(kind, value))
        i = found.end()
    return tokens


def _words(tokens: list[Token], count: int) -> list[str]:
    return [t.text.upper() for t in tokens[:count] if t.kind == "word"]


# Writer statements by their first keywords (the tree cannot tell DROP from DROP DATABASE).
ALLOWED_HEADS = (
    ("CREATE", "TABLE"), ("CREATE", "TEMPORARY", "TABLE"), ("CREATE", "OR", "REPLACE", "TABLE"),
    ("CREATE", "VIEW"), ("CREATE", "OR", "REPLACE", "VIEW"), ("CREATE", "MATERIALIZED", "VIEW"),
    ("CREATE", "DATABASE"), ("CREATE", "FUNCTION"), ("CREATE", "OR", "REPLACE", "FUNCTION"),
    ("DROP", "TABLE"), ("DROP", "TEMPORARY", "TABLE"), ("DROP", "VIEW"), ("DROP", "DATABASE"), ("DROP", "FUNCTION"),
    ("RENAME", "TABLE"), ("EXCHANGE", "TABLES"), ("ALTER", "TABLE"), ("INSERT", "INTO"), ("OPTIMIZE", "TABLE"),
    ("TRUNCATE",), ("DELETE", "FROM"), ("SET",),
)  # fmt: skip


def _check_tokens(tokens: list[Token], top: str) -> str | None:
    """Refuse what the tree leaves out; return a path-like name the statement holds, if any."""
    if top.startswith(READ_STATEMENTS):
        heads: tuple[tuple[str, ...], ...] = ()
    else:
        words = [t.text.upper() for t in tokens[:4]]
        heads = tuple(h for h in ALLOWED_HEADS if tuple(words[: len(h)]) == h)
        if not heads:
            raise refused(" ".join(words[:3]) + " is not allowed", writer=True)
    if heads and heads[0][:2] == ("DROP", "DATABASE") and _database_is_default(tokens):
        raise refused("DROP DATABASE default is not allowed", writer=True)
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        called = following is not None and following.text == "("
        if called and token.kind in ("word", "name") and token.text.lower() in FORBIDDEN_FUNCTIONS:
            raise refused(f"function {token.text}() is not allowed", writer=True)
        assigned = following is not None and following.text == "="
        if assigned and token.kind in ("word", "name") and token.text.lower() in DENIED_SETTINGS:
            raise refused(f"setting {token.text} is not allowed", writer=True)
        if token.kind == "name" and PATH_LIKE.search(token.text):
            return token.text
        if token.kind == "param" and token.text.replace(" ", "").lower().endswith(":identifier}"):
            raise refused("query parameters of type Identifier are not allowed in writer statements", writer=True)
    return None


def _database_is_default(tokens: list[Token]) -> bool:
    names = [t.text for t in tokens[2:] if t.kind in ("word", "name") and t.text.upper() not in ("IF", "EXISTS")]
    return bool(names) and names[0] == "default"
