"""`bildsuche report`: the dbt marts as an HTML page with pictures and a PNG contact sheet.

The store is read first and released (an embedded store admits one process
at a time), then the pictures are found and the files written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bildsuche import config, files
from bildsuche.dataset import CACHE_DIR, PHOTOS_FILE, recorded_model
from bildsuche.errors import MartsMissingError, OutputError
from bildsuche.report.data import RUN_DBT, Photo, ReportData, read_report_data
from bildsuche.report.images import PictureSource, placeholder
from bildsuche.report.page import Pictures, Provenance, downloads, render_page
from bildsuche.report.sheet import Layout, SheetTile, contact_sheet
from bildsuche.store import client_for
from python_embed.demo_model import DEMO_MODEL_NAME
from python_embed.fetch import ImageCache

HTML_FILE = "report.html"
SHEET_FILE = "contact_sheet.png"

__all__ = ["HTML_FILE", "SHEET_FILE", "Layout", "MissingImage", "ReportResult", "make_report", "write_report"]


@dataclass(frozen=True)
class MissingImage:
    photo_id: str
    url: str
    reason: str


@dataclass
class ReportResult:
    html: Path
    sheet: Path
    sheet_size: tuple[int, int]
    tiles: int  # on the page: target, neighbours and every search result
    provenance: Provenance
    missing: list[MissingImage] = field(default_factory=list)  # one per photo, however often it is shown


def provenance(data: ReportData, dataset: Path | None) -> Provenance:
    """The photos' embedding model: from a model column of the store, else from the data set's photos.parquet."""
    if data.photo_models:
        source = "the model column of analytics.photos"
        return Provenance(", ".join(data.photo_models), source, DEMO_MODEL_NAME in data.photo_models)
    if dataset is None:
        return Provenance(None, "the store does not record it, and no data set folder was given")
    path = dataset / PHOTOS_FILE
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return Provenance(None, f"{path} is not a readable parquet file")
    model = recorded_model(metadata)
    if not model:
        return Provenance(None, f"{path} does not record it")
    return Provenance(model, str(path), model == DEMO_MODEL_NAME)


def _sheet_tile(photo: Photo, pictures: Pictures, *, target: bool) -> SheetTile:
    found = pictures.found.get(photo.url)
    title = f"{'target' if target else f'#{photo.rank}'}  {photo.photo_id}"
    facts = [] if photo.dist is None else [f"dist {photo.dist:.4f}"]
    detail = " · ".join([*facts, downloads(photo.downloads)])
    return SheetTile(found.image if found else None, title, detail, highlight=target)


def write_report(
    data: ReportData,
    out: Path,
    *,
    cache: Path,
    provenance: Provenance,
    fetch: bool = True,
    layout: Layout | None = None,
    store: str = "the store",
) -> ReportResult:
    """Find the pictures of ``data``'s photos and write OUT/report.html and OUT/contact_sheet.png."""
    lay = layout or Layout()
    source = PictureSource(ImageCache(cache), fetch=fetch, size=lay.picture)
    grid = [data.target, *data.neighbours]
    shown = [*grid, *(photo for search in data.searches for photo in search.results)]
    shown += [lookalike.photo for lookalike in data.lookalikes or []]
    pictures = Pictures(source.pictures(p.url for p in shown), placeholder(lay.picture))
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = render_page(data, pictures, provenance, store=store, generated=generated)
    sheet = contact_sheet([_sheet_tile(p, pictures, target=i == 0) for i, p in enumerate(grid)], lay)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}") from exc
    html_path, sheet_path = out / HTML_FILE, out / SHEET_FILE
    # One set: a full disk or a read-only folder leaves the earlier report whole.
    files.write_files(
        {html_path: lambda tmp: tmp.write_text(page, encoding="utf-8"), sheet_path: lambda tmp: sheet.save(tmp, "PNG")}
    )
    missing = {
        p.photo_id: MissingImage(p.photo_id, p.url, pictures.problem(p.url))
        for p in shown
        if pictures.uri(p.url) is None
    }
    return ReportResult(html_path, sheet_path, sheet.size, len(shown), provenance, list(missing.values()))


def make_report(
    out: Path,
    *,
    target: str | None = None,
    store: Path | None = None,
    dataset: Path | None = None,
    cache: Path | None = None,
    fetch: bool = True,
    layout: Layout | None = None,
) -> ReportResult:
    """The report of the marts on ``target`` (default: the embedded store at ``store`` or $BILDSUCHE_DB_PATH).

    Pictures come from ``dataset``'s download cache (or ``cache``), local files and, unless
    ``fetch`` is off, the network; the model is read from the store or ``dataset``'s photos.parquet.
    """
    name = target or config.default_target()
    label = name
    if name == "embedded":
        path = store or config.db_path()
        if not path.is_dir():  # opening would create an empty store there
            raise MartsMissingError(f"no embedded store at {path}: {RUN_DBT}")
        label = str(path)
    with client_for(name, path=store) as client:
        data = read_report_data(client)
    cache_dir = cache or (dataset / CACHE_DIR if dataset else config.data_dir() / "report-cache")
    return write_report(
        data, out, cache=cache_dir, provenance=provenance(data, dataset), fetch=fetch, layout=layout, store=label
    )
