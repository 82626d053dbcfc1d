"""`bildsuche report`: the marts as an HTML page and a contact sheet, checked by structure."""

from __future__ import annotations

import html
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bildsuche.cli import main
from bildsuche.dbt import environment, run_dbt
from bildsuche.report import ReportResult, make_report
from bildsuche.report.data import KeywordCount, Lookalike, Photo, ReportData, SavedSearch, Suggestion
from bildsuche.report.images import PictureSource, placeholder
from bildsuche.report.page import Pictures, Provenance, render_page
from bildsuche.report.sheet import Layout, SheetTile, contact_sheet
from bildsuche.store import client_for
from datasets_helpers import conversions_table, write_synthetic
from imageserver import ImageServer, image_server, jpeg
from marts_reference import reference
from python_embed.build import CACHE_DIR
from python_embed.demo_model import DEMO_MODEL_NAME
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import ImageCache, thumbnail_url
from python_embed.queries import embed_query
from python_embed.writer import with_model
from seeds_loader import load
from seeds_loader.searches import save_query

K = 7
HOSTILE_ID = '"><script>alert(1)</script>'
HOSTILE_KEYWORD = "<script>alert('kw')</script>"
HOSTILE_QUERY = '<script>alert("q")</script>'
HOSTILE_TEXT = 'a <b>sunset</b> & "the sea"'
NOWHERE = "http://127.0.0.1:9"  # nothing listens there: these photos can only come from the cache


class PageStructure(HTMLParser):
    """The parts of a report page the tests count: tiles per section, images, chart bars."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.tiles: list[tuple[tuple[str, ...], set[str], str]] = []  # (sections, classes, photo id)
        self.images: list[str] = []
        self.bars = 0
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.sections.append(a.get("data-query-name") or a.get("id") or "")
        elif tag == "figure":
            self.tiles.append((tuple(self.sections), set(a.get("class", "").split()), a.get("data-photo-id", "")))
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "rect" and "bar" in a.get("class", "").split():
            self.bars += 1
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.sections.pop()

    def in_section(self, name: str) -> list[tuple[set[str], str]]:
        return [(classes, pid) for sections, classes, pid in self.tiles if name in sections]


def parse(page: str) -> PageStructure:
    structure = PageStructure()
    structure.feed(page)
    structure.close()
    return structure


# -- pictures, sheet and page, without a store ------------------------------------------------------


def test_pictures_come_from_files_the_cache_and_http(tmp_path: Path) -> None:
    local = tmp_path / "local.jpg"
    local.write_bytes(jpeg((10, 200, 30), (400, 300)))
    cache = ImageCache(tmp_path / "cache")
    cache.put(thumbnail_url(f"{NOWHERE}/cached"), jpeg((1, 2, 3)))
    cache.put(thumbnail_url(f"{NOWHERE}/garbage"), b"not a picture")
    with image_server() as server:
        online = PictureSource(cache, size=152)
        urls = {
            "file_url": local.as_uri(),
            "path": str(local),
            "cached": f"{NOWHERE}/cached",
            "http": server.url("ok", "a"),
            "http_404": server.url("404", "b"),
            "html": server.url("html", "c"),
            "garbage": f"{NOWHERE}/garbage",
            "scheme": "ftp://example.org/x.jpg",
            "empty": "",
            "gone": (tmp_path / "gone.jpg").as_uri(),
        }
        found = online.pictures(urls.values())
        again = online.picture(urls["http"])  # now from the cache
        offline = PictureSource(ImageCache(tmp_path / "other-cache"), fetch=False).picture(server.url("ok", "d"))
        hits = dict(server.hits)
    got = {name: found[url] for name, url in urls.items()}
    for name in ("file_url", "path", "cached", "http"):
        image = got[name].image
        assert image is not None, (name, got[name].problem)
        assert max(image.size) == 152 and image.mode == "RGB"
    assert got["file_url"].image is not None and got["file_url"].image.size == (152, 114)  # 4:3 kept
    assert again.image is not None and hits["/ok/a"] == 1
    problems = {name: (got[name].problem or "").split(":")[0] for name in urls if got[name].image is None}
    assert problems == {
        "http_404": "http_404",
        "html": "not_image",
        "garbage": "not_image",
        "scheme": "bad_url",
        "empty": "no_url",
        "gone": "missing_file",
    }
    assert offline.image is None and (offline.problem or "").startswith("not_cached")
    assert "/ok/d" not in hits


@pytest.mark.parametrize(
    ("count", "layout", "size"),
    [
        (1, Layout(), (160, 200)),
        (6, Layout(), (960, 200)),
        (8, Layout(), (960, 400)),
        (13, Layout(), (960, 600)),
        (7, Layout(tile=100, caption=20, columns=3), (300, 360)),
    ],
)
def test_contact_sheet_size_follows_the_tile_grid(count: int, layout: Layout, size: tuple[int, int]) -> None:
    picture = Image.new("RGB", (layout.picture, layout.picture // 2), (0, 0, 255))
    tiles = [SheetTile(picture if i % 2 else None, f"#{i} ✓ ĳ", "dist 0.1", highlight=i == 0) for i in range(count)]
    sheet = contact_sheet(tiles, layout)
    assert sheet.size == layout.size(count) == size
    encoded = io.BytesIO()
    sheet.save(encoded, "PNG")
    assert Image.open(encoded).size == size


def test_contact_sheet_marks_missing_pictures() -> None:
    lay = Layout()
    sheet = contact_sheet([SheetTile(None, "#1 x", "no picture")], lay)
    area = sheet.crop((lay.pad, lay.pad, lay.pad + lay.picture, lay.pad + lay.picture))
    assert area.tobytes() == placeholder(lay.picture).tobytes()
    with pytest.raises(ValueError, match="at least one tile"):
        contact_sheet([], lay)


def test_every_value_from_the_data_is_escaped() -> None:
    hostile = Photo(HOSTILE_ID, f"{NOWHERE}/<img src=x onerror=alert(2)>", 3, 0.25, 1)
    data = ReportData(
        target=Photo("<b>target</b>", "javascript:alert(3)", 1),
        neighbours=[hostile],
        keyword_photo_id=HOSTILE_ID,
        keywords=[KeywordCount(HOSTILE_KEYWORD, 5), KeywordCount("x" * 60 + "<i>", 2)],
        searches=[SavedSearch(HOSTILE_QUERY, [hostile], "text", HOSTILE_TEXT, "<model>")],
        suggestions=[Suggestion(HOSTILE_KEYWORD, 2.5, 2, 3)],
        lookalikes=[Lookalike(Photo("<u>lookalike</u>", "x", 0, None, 1), 12.0, 4, ["<em>kw</em>"])],
        lookalikes_total=1,
    )
    page = render_page(
        data,
        Pictures({}, placeholder(152)),
        Provenance("<model>", "<script>source</script>", is_demo=True),
        store="<store>",
        generated="<now>",
    )
    structure = parse(page)
    assert structure.scripts == 0 and "<script" not in page.lower()
    assert "<b>" not in page and "<i>" not in page and "<model>" not in page and "<store>" not in page
    assert "<u>" not in page and "<em>" not in page and "try: &lt;em&gt;kw&lt;/em&gt;" in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#x27;kw&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;sunset&lt;/b&gt; &amp; &quot;the sea&quot;" in page
    assert {pid for _, _, pid in structure.tiles} == {"<b>target</b>", HOSTILE_ID, "<u>lookalike</u>"}
    assert all(src.startswith("data:image/png;base64,") for src in structure.images)  # all placeholders
    assert structure.bars == 2
    assert all("missing" in classes for _, classes, _ in structure.tiles)


# -- the report of a real store -----------------------------------------------------------------------


@dataclass
class Built:
    root: Path
    dataset: Path
    store: Path
    server: ImageServer
    target: str
    unreachable: str  # the nearest neighbour, whose URL answers 404
    urls: dict[str, str] = field(default_factory=dict)


def _rewrite_dataset(dataset: Path, server: ImageServer, unreachable: str, files: Path) -> dict[str, str]:
    """Photo URLs of every kind a report meets, the demo model's name, and a hostile keyword."""
    photos = pq.read_table(dataset / "photos.parquet")
    cache = ImageCache(dataset / CACHE_DIR)
    files.mkdir()
    urls = {}
    for i, pid in enumerate(photos.column("photo_id").to_pylist()):
        if pid == unreachable:
            urls[pid] = server.url("404", f"gone{i}")
        elif i % 3 == 0:
            path = files / f"{i}.jpg"
            path.write_bytes(jpeg((i % 255, 90, 160)))
            urls[pid] = path.as_uri()
        elif i % 3 == 1:
            urls[pid] = f"{NOWHERE}/cached/{i}"
            cache.put(thumbnail_url(urls[pid]), jpeg((200, i % 255, 40)))
        else:
            urls[pid] = server.url("ok", str(i))
    column = pa.array([urls[pid] for pid in photos.column("photo_id").to_pylist()], pa.string())
    photos = photos.set_column(photos.column_names.index("photo_image_url"), "photo_image_url", column)
    pq.write_table(with_model(photos, DEMO_MODEL_NAME), dataset / "photos.parquet")
    conversions = pq.read_table(dataset / "conversions.parquet")
    rows = list(zip(conversions.column("photo_id").to_pylist(), conversions.column("keyword").to_pylist(), strict=True))
    # Enough downloads under the hostile keyword for it to lead every photo's breakdown.
    rows += [(pid, HOSTILE_KEYWORD) for pid in urls for _ in range(40)]
    pq.write_table(conversions_table(rows), dataset / "conversions.parquet")
    return urls


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("report")
    data = write_synthetic(root / "dataset", n=120, extra_ids=(HOSTILE_ID,))
    unreachable = reference(data, HOSTILE_ID, K).neighbours[0][0]
    with image_server() as server:
        urls = _rewrite_dataset(data.directory, server, unreachable, root / "files")
        store = root / "store"
        with client_for("embedded", path=store) as client:
            load(client, data.directory)
            embedder = ClipEmbedder(str(demo_model_dir))
            save_query(client, embed_query(embedder, name=HOSTILE_QUERY, text=HOSTILE_TEXT))
            save_query(client, embed_query(embedder, name="plain", text="a forest"))
        with environment({"DBT_TARGET_PATH": str(root / "target"), "DBT_LOG_PATH": str(root / "logs")}):
            run_dbt(["build"], db_path=store, dbt_vars={"target_photo_id": HOSTILE_ID, "top_k": K}, quiet=True)
        yield Built(root, data.directory, store, server, HOSTILE_ID, unreachable, urls)


@pytest.fixture(scope="module")
def report(built: Built) -> ReportResult:
    return make_report(built.root / "out", store=built.store, dataset=built.dataset)


def _marts(store: Path) -> tuple[list[str], int, Counter[str]]:
    with client_for("embedded", path=store) as client:
        neighbours = [
            r[0] for r in client.query("SELECT photo_id FROM analytics.top_k_neighbours ORDER BY rank").result_rows
        ]
        keywords = int(client.query("SELECT count() FROM analytics.keyword_breakdown").result_rows[0][0])
        searches = Counter(
            str(r[0]) for r in client.query("SELECT query_name FROM analytics.search_results").result_rows
        )
    return neighbours, keywords, searches


@pytest.mark.slow
def test_report_shows_target_neighbours_keywords_and_searches(built: Built, report: ReportResult) -> None:
    neighbours, keyword_rows, searches = _marts(built.store)
    page = report.html.read_text(encoding="utf-8")
    structure = parse(page)

    grid = structure.in_section("neighbours")
    assert len(grid) == K + 1
    assert [pid for _, pid in grid] == [built.target, *neighbours]
    assert ["target" in c for c, _ in grid] == [True] + [False] * K
    assert sum("neighbour" in c for c, _ in grid) == K

    assert keyword_rows > 1 and structure.bars == keyword_rows
    assert searches == {HOSTILE_QUERY: K, "plain": K}
    for name in searches:
        tiles = structure.in_section(name)
        assert len(tiles) == K and all("result" in c for c, _ in tiles)
    # Every photo has 40 downloads under the hostile keyword: none is overlooked by its look-alikes.
    assert structure.in_section("lookalikes") == [] and "No photo is downloaded far less" in page
    assert report.tiles == K + 1 + 2 * K == len(structure.tiles)
    with client_for("embedded", path=built.store) as client:
        suggested = client.query(
            "SELECT keyword FROM analytics.keyword_suggestions WHERE photo_id = {p:String} ORDER BY rank",
            parameters={"p": built.target},
        ).result_rows
    section = page[page.index('<section id="suggestions">') :]
    cells = re.findall(r"<tr><td>(.*?)</td>", section[: section.index("</section>")])
    assert suggested and cells == [html.escape(str(r[0]), quote=True) for r in suggested]

    assert any(path.startswith("/ok/") for path in built.server.hits)  # some pictures came over HTTP
    assert structure.images and len(structure.images) == len(structure.tiles)
    assert all(src.startswith("data:image/") for src in structure.images)

    # One photo's URL answers 404: a placeholder wherever it is shown, listed once, and nothing else missing.
    assert [(m.photo_id, m.reason.split(":")[0]) for m in report.missing] == [(built.unreachable, "http_404")]
    missing_tiles = [pid for _, classes, pid in structure.tiles if "missing" in classes]
    assert missing_tiles and set(missing_tiles) == {built.unreachable}
    assert len(missing_tiles) == sum(pid == built.unreachable for _, _, pid in structure.tiles)

    assert structure.scripts == 0 and "<script" not in page.lower()
    assert HOSTILE_TEXT not in page and "&lt;b&gt;sunset&lt;/b&gt; &amp; &quot;the sea&quot;" in page
    assert 'class="note demo-model"' in page and DEMO_MODEL_NAME in page
    assert report.provenance.is_demo


@pytest.mark.slow
def test_contact_sheet_is_the_grid_of_target_and_neighbours(report: ReportResult) -> None:
    with Image.open(report.sheet) as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == report.sheet_size == (960, 400)  # 1 + 7 tiles: 6 columns of 160 px, 2 rows of 160 + 40


@pytest.mark.slow
def test_cli_report_offline_without_dataset(built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sum(built.server.hits.values())
    out = tmp_path / "out"
    code = main(["report", "--out", str(out), "--store", str(built.store), "--cache", str(tmp_path / "c"), "--offline"])
    printed = capsys.readouterr().out
    assert code == 0
    assert f"report: {out / 'report.html'}" in printed and "(960x400)" in printed
    assert sum(built.server.hits.values()) == before  # offline: no request at all
    page = (out / "report.html").read_text(encoding="utf-8")
    structure = parse(page)
    # no data set given: the store's embed_model column names the model
    assert 'class="note demo-model"' in page and "the model column of analytics.photos" in page
    # Only local files are found: every other tile is a placeholder, and the run still succeeds.
    files = {pid for pid, url in built.urls.items() if url.startswith("file:")}
    assert {pid for _, classes, pid in structure.tiles if "missing" not in classes} <= files
    assert any("missing" in classes for _, classes, _ in structure.tiles)


def test_cli_report_without_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "no-store"
    code = main(["report", "--out", str(tmp_path / "out"), "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "bildsuche: error: no embedded store at" in err and "dbt build" in err
    assert not store.exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_report_before_dbt_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_synthetic(tmp_path / "dataset", n=30)
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        load(client, data.directory)
    code = main(["report", "--out", str(tmp_path / "out"), "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "analytics.top_k_neighbours" in err and "run `dbt build`" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
