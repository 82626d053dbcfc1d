"""The report as one self-contained HTML page: pictures inlined as data: URIs,
the keyword chart as inline SVG, no scripts, no outside requests.

Every value that comes from the data (photo ids, URLs, keywords, search
names and texts, model names) goes through ``esc``.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

from bildsuche.report.data import Lookalike, Photo, ReportData, SavedSearch
from bildsuche.report.images import Picture
from python_embed.demo_model import DEMO_MODEL_NAME

CHART_WIDTH, LABEL_WIDTH, BAR_AREA, ROW_HEIGHT = 640, 200, 360, 24
LABEL_CHARS = 28

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 code, h2 code, h3 code { font-size: 0.95em; }
.note { padding: 0.6em 0.9em; background: #f3f3f3; border-left: 4px solid #888; }
.note.demo-model { background: #fff4e0; border-left-color: #d67800; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.tile { margin: 0; width: 160px; }
.tile img { display: block; width: 152px; height: 152px; object-fit: contain; background: #fafafa; padding: 4px; }
.tile.target img { outline: 3px solid #d67800; }
.tile figcaption { font-size: 12px; overflow-wrap: anywhere; }
.tile.missing figcaption .problem { color: #b33; }
svg.keywords text { font: 12px system-ui, sans-serif; }
svg.keywords rect.bar { fill: #4a78b5; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
"""


@dataclass(frozen=True)
class Provenance:
    """What is known of the model behind the photos' embeddings."""

    model: str | None
    source: str  # where the name was read
    is_demo: bool = False


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


class Pictures:
    """Pictures by URL, each encoded once as a data: URI (a photo may be on the page twice)."""

    def __init__(self, found: Mapping[str, Picture], placeholder: Image.Image) -> None:
        self.found = found
        self._uris: dict[str, str] = {}
        self.placeholder_uri = _data_uri(placeholder, "PNG")

    def uri(self, url: str) -> str | None:
        picture = self.found.get(url)
        if picture is None or picture.image is None:
            return None
        if url not in self._uris:
            self._uris[url] = _data_uri(picture.image, "JPEG")
        return self._uris[url]

    def problem(self, url: str) -> str:
        picture = self.found.get(url)
        return (picture.problem if picture else None) or "not looked up"


def downloads(count: int) -> str:
    return f"{count} download{'' if count == 1 else 's'}"


def _data_uri(image: Image.Image, kind: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, kind, **({"quality": 85} if kind == "JPEG" else {}))
    return f"data:image/{kind.lower()};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _tile(role: str, photo: Photo, pictures: Pictures, extra: Sequence[str] = ()) -> str:
    uri = pictures.uri(photo.url)
    classes = f"tile {role}" + ("" if uri else " missing")
    heading = "target" if photo.rank is None else f"#{photo.rank}"
    lines = [f'<span class="rank">{esc(heading)}</span> <code>{esc(photo.photo_id)}</code>']
    facts = [] if photo.dist is None else [f"dist {photo.dist:.4f}"]
    facts.append(downloads(photo.downloads))
    lines.append(esc(" · ".join(facts)))
    lines += [esc(line) for line in extra]
    if not uri:
        lines.append(f'<span class="problem">no image: {esc(pictures.problem(photo.url))}</span>')
    alt = f"{'no image of' if not uri else 'photo'} {photo.photo_id}"
    return (
        f'<figure class="{classes}" data-photo-id="{esc(photo.photo_id)}">'
        f'<img src="{uri or pictures.placeholder_uri}" alt="{esc(alt)}" width="152" height="152">'
        f"<figcaption>{'<br>'.join(lines)}</figcaption></figure>"
    )


def _provenance(p: Provenance) -> str:
    if p.is_demo:
        return (
            '<p class="note demo-model">These embeddings came from the randomly initialised demo CLIP model '
            f"(<code>{esc(p.model)}</code>, read from {esc(p.source)}): real CLIP code with random weights, "
            "so neighbours follow colour and layout, not meaning.</p>"
        )
    if p.model:
        return f'<p class="note model">Embedding model: <code>{esc(p.model)}</code> (read from {esc(p.source)}).</p>'
    return f'<p class="note model">The embedding model is not known: {esc(p.source)}.</p>'


def keyword_chart(data: ReportData) -> str:
    if not data.keywords:
        return '<p class="empty">No candidate was downloaded, so there are no keywords to break down.</p>'
    top = max(k.downloads for k in data.keywords) or 1
    height = ROW_HEIGHT * len(data.keywords)
    rows = []
    for i, row in enumerate(data.keywords):
        y = i * ROW_HEIGHT
        width = max(1, round(BAR_AREA * row.downloads / top))
        label = row.keyword if len(row.keyword) <= LABEL_CHARS else row.keyword[: LABEL_CHARS - 1] + "…"
        rows.append(
            f'<g class="keyword"><text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end">{esc(label)}</text>'
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 4}" width="{width}" height="16">'
            f"<title>{esc(row.keyword)}: {row.downloads} downloads</title></rect>"
            f'<text x="{LABEL_WIDTH + width + 6}" y="{y + 16}">{row.downloads}</text></g>'
        )
    return (
        f'<svg class="keywords" xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{height}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" role="img" aria-label="downloads per search keyword">'
        + "".join(rows)
        + "</svg>"
    )


def _search(search: SavedSearch, pictures: Pictures) -> str:
    about = ""
    if search.query is not None:
        about = f'<p class="query">{esc(search.kind)} search: <q>{esc(search.query)}</q>'
        if search.model:
            demo = ", the randomly initialised demo model" if search.model == DEMO_MODEL_NAME else ""
            about += f" (embedded by <code>{esc(search.model)}</code>{demo})"
        about += "</p>"
    tiles = "".join(_tile("result", photo, pictures) for photo in search.results)
    return (
        f'<section class="search" data-query-name="{esc(search.name)}"><h3>{esc(search.name)}</h3>'
        f'{about}<div class="grid">{tiles}</div></section>'
    )


def _searches(data: ReportData, pictures: Pictures) -> str:
    if not data.has_search_mart:
        body = "<p>The store has no analytics.search_results mart; <code>dbt build</code> creates it.</p>"
    elif not data.searches:
        body = "<p>No saved searches: save one with <code>python -m python_embed query</code>, then dbt build.</p>"
    else:
        body = "".join(_search(s, pictures) for s in data.searches)
    return f'<section id="searches"><h2>Saved searches</h2>{body}</section>'


def _suggestions(data: ReportData) -> str:
    if data.suggestions is None:
        return ""
    title = f"<h2>Keywords to suggest for <code>{esc(data.target.photo_id)}</code></h2>"
    if not data.suggestions:
        body = "<p>None: its neighbours were not downloaded under any keyword it does not have.</p>"
    else:
        cells = "".join(
            f"<tr><td>{esc(s.keyword)}</td><td>{s.score:.2f}</td><td>{s.neighbours}</td>"
            f"<td>{s.neighbour_downloads}</td></tr>"
            for s in data.suggestions
        )
        body = (
            "<p>Search keywords its nearest photos were downloaded under and it lacks, each download weighted "
            "by the neighbour's similarity (analytics.keyword_suggestions).</p>"
            "<table><tr><th>keyword</th><th>score</th><th>neighbours</th><th>their downloads</th></tr>"
            f"{cells}</table>"
        )
    return f'<section id="suggestions">{title}{body}</section>'


def _lookalike_tile(item: Lookalike, pictures: Pictures) -> str:
    extra = [f"look-alikes: median {item.neighbour_downloads:g} downloads ({item.lookalikes})"]
    if item.suggested_keywords:
        extra.append("try: " + ", ".join(item.suggested_keywords))
    return _tile("lookalike", item.photo, pictures, extra)


def _lookalikes(data: ReportData, pictures: Pictures) -> str:
    if data.lookalikes is None:
        return ""
    if not data.lookalikes:
        body = "<p>No photo is downloaded far less than its look-alikes (vars <code>underexposed_*</code>).</p>"
    else:
        shown = f"the {len(data.lookalikes)} largest gaps of {data.lookalikes_total}"
        body = (
            f"<p>Photos whose look-alikes are downloaded far more than they are ({shown}, "
            "analytics.underexposed_lookalikes): worth better tags or promotion.</p>"
            f'<div class="grid">{"".join(_lookalike_tile(item, pictures) for item in data.lookalikes)}</div>'
        )
    return f'<section id="lookalikes"><h2>Overlooked look-alikes</h2>{body}</section>'


def _missing(photos: Sequence[Photo], pictures: Pictures) -> str:
    rows = {p.photo_id: p for p in photos if pictures.uri(p.url) is None}
    if not rows:
        return ""
    cells = "".join(
        f"<tr><td><code>{esc(p.photo_id)}</code></td><td>{esc(p.url)}</td><td>{esc(pictures.problem(p.url))}</td></tr>"
        for p in rows.values()
    )
    return (
        f'<section id="missing"><h2>Photos without an image ({len(rows)})</h2>'
        f"<table><tr><th>photo_id</th><th>photo_image_url</th><th>why</th></tr>{cells}</table></section>"
    )


def render_page(data: ReportData, pictures: Pictures, provenance: Provenance, *, store: str, generated: str) -> str:
    neighbours = _tile("target", data.target, pictures) + "".join(
        _tile("neighbour", p, pictures) for p in data.neighbours
    )
    keywords_of = f", <code>{esc(data.keyword_photo_id)}</code>" if data.keyword_photo_id else ""
    every = [data.target, *data.neighbours, *(p for s in data.searches for p in s.results)]
    every += [item.photo for item in data.lookalikes or []]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>bildsuche report: {esc(data.target.photo_id)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Photos similar to <code>{esc(data.target.photo_id)}</code></h1>"
        f'<p class="meta">The {len(data.neighbours)} nearest neighbours by cosine distance (analytics.top_k_neighbours)'
        f" with their downloads (analytics.conversions_per_candidate), from {esc(store)}; generated {esc(generated)}."
        f"</p>{_provenance(provenance)}</header>"
        f'<section id="neighbours"><h2>Target and neighbours</h2><div class="grid">{neighbours}</div></section>'
        f'<section id="keywords"><h2>Keywords of the most downloaded candidate{keywords_of}</h2>'
        f"{keyword_chart(data)}</section>{_suggestions(data)}{_lookalikes(data, pictures)}"
        f"{_searches(data, pictures)}{_missing(every, pictures)}</body></html>\n"
    )
