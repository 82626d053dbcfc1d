"""`bildsuche serve`: a read-only ClickHouse HTTP endpoint over the embedded store."""

from bildsuche.serve.engine import Limits, ReadOnlyEngine
from bildsuche.serve.server import make_server

__all__ = ["Limits", "ReadOnlyEngine", "make_server"]
