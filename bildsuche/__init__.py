"""bildsuche: image-similarity analytics as a dbt project on ClickHouse."""

__version__ = "0.1.0"
