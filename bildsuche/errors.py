"""Typed errors of the library; the CLI turns them into one-line messages."""


class BildsucheError(Exception):
    """Base of every error the command line reports without a traceback."""

    exit_code = 1


class UsageError(BildsucheError):
    """A value given by the user is not acceptable."""

    exit_code = 2


class InputDataError(BildsucheError):
    """An input file does not hold what it must; nothing was stored."""


class EmbeddingModelMismatchError(BildsucheError):
    """Embeddings of one model would be compared with another model's; nothing was stored."""


class StoreUnavailableError(BildsucheError):
    """The database (embedded store or server) cannot be opened."""


class DbtRunError(BildsucheError):
    """dbt reported a failed node."""


class MartsMissingError(BildsucheError):
    """The dbt marts a command reads are not (yet) in the store."""


class OutputError(BildsucheError):
    """An output file or folder could not be written (disk full, read-only); earlier outputs are intact."""
