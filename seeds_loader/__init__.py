"""Load the parquet files of python_embed into the raw tables."""

from seeds_loader.loader import LoadReport, load

__all__ = ["LoadReport", "load"]
