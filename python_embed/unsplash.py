"""Read an Unsplash Lite release: the zip as published or its unpacked folder.

Each table is a tab-separated file with a header row, named `photos.tsv000`
(older releases: `photos.csv000`, still tab-separated), possibly split into
parts `…000`, `…001`, … that concatenate.  Fields may be quoted with `"` and
then hold tabs and newlines; values may carry stray spaces; macOS adds
`__MACOSX/` entries to zips.  Every column is kept as a trimmed string (empty
-> null): typing is left to the dbt staging models, where it is visible and
testable.

Repaired on the way: a UTF-8 byte order mark before the header (spreadsheet
exports write one), Windows line ends, blank lines.  Refused with the file
named: rows with more or fewer fields than the header, an unterminated quote,
bytes that are not UTF-8, a header naming a column twice, an empty file.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bildsuche.errors import InputDataError

TABLES = ("photos", "conversions", "keywords", "collections", "colors")
BOM = b"\xef\xbb\xbf"
PART_RE = re.compile(r"^(?P<table>[a-z_]+)\.(?:tsv|csv)(?P<part>\d{3})$")


def _parts(names: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        if "__MACOSX/" in name or Path(name).name.startswith("._"):
            continue
        match = PART_RE.match(Path(name).name)
        if match and match["table"] in TABLES:
            found.setdefault(match["table"], []).append((int(match["part"]), name))
    return {table: [name for _, name in sorted(parts)] for table, parts in found.items()}


class Release:
    """One Unsplash Lite release, from a .zip or a directory."""

    def __init__(self, location: Path) -> None:
        self.location = Path(location)
        self._zip: zipfile.ZipFile | None = None
        if self.location.is_file():
            try:
                self._zip = zipfile.ZipFile(self.location)
            except zipfile.BadZipFile as exc:
                raise InputDataError(f"{self.location}: not a zip file ({exc})") from exc
            names = self._zip.namelist()
        elif self.location.is_dir():
            names = [str(p.relative_to(self.location)) for p in self.location.rglob("*") if p.is_file()]
        else:
            raise InputDataError(f"{self.location}: no such file or directory")
        self.parts = _parts(names)
        if "photos" not in self.parts:
            raise InputDataError(f"{self.location}: no photos.tsv000 (or .csv000) in this Unsplash Lite release")

    @contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        if self._zip is not None:
            with self._zip.open(name) as handle:
                yield handle
        else:
            with open(self.location / name, "rb") as handle:
                yield handle

    def _first_line(self, part: str) -> bytes:
        with self._open(part) as handle:
            return handle.readline().rstrip(b"\r\n").removeprefix(BOM)

    def _header(self, part: str) -> list[str]:
        """The column names in the first line of ``part``, checked."""
        where = f"{self.location}:{part}"
        first_line = self._first_line(part)
        if not first_line:
            raise InputDataError(f"{where}: empty file, or an empty first line where the header belongs")
        try:
            header = [h.strip() for h in first_line.decode("utf-8").split("\t")]
        except UnicodeDecodeError as exc:
            raise InputDataError(f"{where}: the header is not UTF-8 text ({exc})") from exc
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise InputDataError(f"{where}: the header names column(s) {', '.join(map(repr, repeated))} twice")
        return header

    def batches(self, table: str) -> Iterator[pa.RecordBatch]:
        """The table's rows (all parts, in order), streamed; every column a trimmed string."""
        names: list[str] | None = None
        for part in self.parts.get(table, []):
            if names is None:
                names, has_header = self._header(part), True
            else:  # a later part repeats the header, or starts with rows
                first = self._first_line(part).decode("utf-8", "replace")
                has_header = [h.strip() for h in first.split("\t")] == names
            with self._open(part) as handle:
                yield from _parse(handle, names, has_header, f"{self.location}:{part}")

    def read(self, table: str) -> pa.Table | None:
        """The whole table in memory; None when the release lacks it."""
        if table not in self.parts:
            return None
        batches = list(self.batches(table))
        if not batches:  # a header and no rows: the columns, empty
            return pa.table({name: pa.array([], pa.string()) for name in self._header(self.parts[table][0])})
        return pa.Table.from_batches(batches)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _parse(handle: IO[bytes], names: list[str], has_header: bool, where: str) -> Iterator[pa.RecordBatch]:
    """Parse one part; parts after the first may or may not repeat the header."""
    if not has_header and handle.read(len(BOM)) != BOM:
        handle.seek(0)  # a headerless part: a mark, if any, is skipped, the first row kept
    parse = pacsv.ParseOptions(delimiter="\t", quote_char='"', newlines_in_values=True, double_quote=True)
    read = pacsv.ReadOptions(column_names=names, skip_rows=1 if has_header else 0, block_size=8 << 20)
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in names}, strings_can_be_null=False)
    try:
        reader = pacsv.open_csv(handle, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            yield _clean(batch)
    except pa.ArrowInvalid as exc:
        raise InputDataError(f"{where}: malformed tab-separated data ({exc})") from exc


def _clean(batch: pa.RecordBatch) -> pa.RecordBatch:
    columns = []
    for column in batch.columns:
        trimmed = pc.utf8_trim_whitespace(column)
        columns.append(pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed))
    return pa.RecordBatch.from_arrays(columns, names=[name.strip() for name in batch.schema.names])
