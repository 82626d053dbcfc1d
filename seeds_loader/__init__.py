"""Load the parquet files of python_embed into the raw tables, and store saved searches."""

from seeds_loader.loader import LoadReport, load
from seeds_loader.searches import save_queries, save_query

__all__ = ["LoadReport", "load", "save_queries", "save_query"]
