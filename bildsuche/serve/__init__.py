"""`bildsuche serve`: ClickHouse's HTTP interface over the embedded store, for readers and the writer."""

from bildsuche.serve.accounts import Accounts
from bildsuche.serve.engine import Limits, StoreEngine
from bildsuche.serve.pictures import Pictures
from bildsuche.serve.querylog import QueryLog
from bildsuche.serve.server import make_server

__all__ = ["Accounts", "Limits", "Pictures", "QueryLog", "StoreEngine", "make_server"]
