"""The part of ClickHouse's HTTP interface that clients use.

Request: the query in the `query` URL parameter and/or the POST body (for an
INSERT, the rows after its FORMAT clause, in either);
`database`, `default_format`, `query_id`, `session_id`, `param_<name>` query
parameters and settings as URL parameters; user and password by HTTP basic
auth, `X-ClickHouse-User`/`-Key` headers or `user`/`password` parameters.
Response: the result in the requested format with the `X-ClickHouse-*`
headers clients read; errors in ClickHouse's text form with its exception
code and HTTP status.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

# URL parameters that steer the HTTP layer rather than the query.
TRANSPORT_PARAMETERS = frozenset(
    {
        "query", "database", "default_format", "query_id", "session_id", "session_timeout", "session_check",
        "user", "password", "quota_key", "compress", "decompress", "buffer_size", "wait_end_of_query",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms", "enable_http_compression",
        "client_protocol_version", "role", "http_zlib_compression_level", "add_http_cors_header",
        "http_native_compression_disable_checksumming_on_decompress", "cancel_http_readonly_queries_on_client_close",
    }
)  # fmt: skip

# Both are echoed into response headers: CR or LF would let a client write headers of its own.
QUERY_ID = re.compile(r"^[\x20-\x7e]{1,256}$")
FORMAT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

# Input the client got wrong (parse errors, bad arguments, unknown names) is a 4xx, as on a ClickHouse server.
STATUS_BY_CODE = {
    62: 400, 25: 400, 27: 400, 6: 400, 26: 400, 38: 400, 41: 400, 42: 400, 43: 400, 44: 400, 46: 400, 47: 400,
    53: 400, 36: 400, 69: 400, 70: 400, 72: 400, 73: 400, 115: 400, 117: 400, 167: 400, 168: 400, 321: 400,
    344: 400, 456: 400, 457: 400,
    60: 404, 81: 404,
    164: 403, 497: 403, 516: 403, 390: 400,
    194: 401,
    202: 503,
}  # fmt: skip


class BadRequest(Exception):
    """A request the HTTP layer refuses before any query runs."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


@dataclass
class Request:
    query: str  # the `query` URL parameter; the body follows it, after a line break
    database: str | None
    default_format: str
    query_id: str
    user: str
    password: str
    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def parse(query_string: str, headers: dict[str, str]) -> Request:
    """The request's URL parameters and headers (``headers`` with lower-cased names)."""
    parameters = parse_qsl(query_string, keep_blank_values=True)
    values = dict(parameters)
    user, password = values.get("user", ""), values.get("password", "")
    if "x-clickhouse-user" in headers or "x-clickhouse-key" in headers:
        user = headers.get("x-clickhouse-user", user)
        password = headers.get("x-clickhouse-key", password)
    auth = headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user, _, password = decoded.partition(":")
    settings, params = {}, {}
    for name, value in parameters:
        if name.startswith("param_"):
            params[name[len("param_") :]] = value
        elif name not in TRANSPORT_PARAMETERS:
            settings[name] = value
    query_id = values.get("query_id") or str(uuid.uuid4())
    if not QUERY_ID.match(query_id):
        raise BadRequest(36, "BAD_ARGUMENTS", "query_id must be 1 to 256 printable ASCII characters")
    default_format = values.get("default_format") or headers.get("x-clickhouse-format") or "TabSeparated"
    if not FORMAT_NAME.match(default_format):
        raise BadRequest(73, "UNKNOWN_FORMAT", "Unknown format: the format name is not a name")
    return Request(
        query=values.get("query", ""),
        database=values.get("database") or headers.get("x-clickhouse-database") or None,
        default_format=default_format,
        query_id=query_id,
        user=user or "default",
        password=password,
        settings=settings,
        params=params,
    )


def content_type(fmt: str) -> str:
    name = fmt.lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        return "text/csv; charset=UTF-8; header=" + ("present" if "names" in name else "absent")
    if name.startswith("json"):
        return "application/json; charset=UTF-8"
    if name in ("xml",):
        return "application/xml; charset=UTF-8"
    if name.startswith(("pretty", "vertical", "markdown", "values")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


def summary(rows_read: int, bytes_read: int, rows_written: int, elapsed: float) -> str:
    return json.dumps(
        {
            "read_rows": str(rows_read),
            "read_bytes": str(bytes_read),
            "written_rows": str(rows_written),
            "written_bytes": "0",
            "total_rows_to_read": str(rows_read),
            "result_rows": "0",
            "result_bytes": "0",
            "elapsed_ns": str(int(elapsed * 1e9)),
        },
        separators=(",", ":"),
    )


def error_body(code: int, name: str, message: str, version: str) -> bytes:
    return f"Code: {code}. DB::Exception: {message.rstrip('.')}. ({name}) (version {version})\n".encode()


def status_for(code: int) -> int:
    return STATUS_BY_CODE.get(code, 500)
