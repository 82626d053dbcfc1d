"""dbt's `adapter` for sqlfluff's jinja templater (lint time only): dispatched
macros render as their ClickHouse implementation would."""

from collections.abc import Callable


def _vector_distance(left: str, right: str) -> str:
    return f"cosineDistance({left}, {right})"


def _query_parameter(name: str, type_name: str) -> str:
    # sqlfluff's ClickHouse dialect has no `{name:Type}` placeholders: lint a literal.
    return "''" if type_name == "String" else "1"


def _deleted_rows_slack(relation: object, k: object) -> str:
    return f"least(toUInt64({k}), (select toUInt64(count()) from system.parts where active))"


_LINT_IMPLEMENTATIONS: dict[str, Callable[..., str]] = {
    "vector_distance": _vector_distance,
    "deleted_rows_slack": _deleted_rows_slack,
    "query_parameter": _query_parameter,
}


def dispatch(name: str, macro_namespace: str | None = None) -> Callable[..., str]:
    return _LINT_IMPLEMENTATIONS.get(name, lambda *args, **kwargs: "")


def type() -> str:
    return "clickhouse"


def quote(identifier: str) -> str:
    return f"`{identifier}`"


def get_relation(database: object = None, schema: object = None, identifier: object = None) -> None:
    return None
