"""Pictures for BI tools: the marts' picture_url, and the thumbnails `bildsuche serve --pictures` hands out."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from PIL import Image

from bildsuche.dataset import CACHE_DIR
from bildsuche.store import client_for
from datasets_helpers import built_store, write_synthetic
from python_embed.fetch import ImageCache, thumbnail_url
from serve_helpers import server_stderr, start_serve, stop

pytestmark = pytest.mark.slow

ODD_ID = "a b#c/ä"  # quoted in the URL, found again by serve


@dataclass
class Pictured:
    url: str
    store: Path
    process: subprocess.Popen[str]
    kinds: dict[str, str]  # photo_id -> how its picture is stored


def _jpeg(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG")


@pytest.fixture(scope="module")
def pictured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pictured]:
    root = tmp_path_factory.mktemp("pictures")
    data = write_synthetic(root / "dataset", n=60, extra_ids=(ODD_ID,))
    photos = pq.read_table(data.directory / "photos.parquet")
    urls = photos.column("photo_image_url").to_pylist()
    ids = photos.column("photo_id").to_pylist()
    kinds = {}
    for i, photo_id in enumerate(ids):
        if i < 20 or photo_id == ODD_ID:  # a folder of images inside the data set
            picture = data.directory / "images" / f"{i}.jpg"
            _jpeg(picture, (i * 12 % 256, 80, 160))
            urls[i], kinds[photo_id] = picture.as_uri(), "inside"
        elif i == 20:  # a picture outside every --pictures folder
            outside = root / "outside" / "x.jpg"
            _jpeg(outside, (0, 0, 0))
            urls[i], kinds[photo_id] = outside.as_uri(), "outside"
        elif i == 21:  # a file that is no image
            (data.directory / "notes.jpg").write_text("not a picture")
            urls[i], kinds[photo_id] = (data.directory / "notes.jpg").as_uri(), "not_image"
        elif i == 22:
            urls[i], kinds[photo_id] = "file:///etc/passwd", "outside"
        elif i == 23:  # on the web, in the build's download cache
            buffer = io.BytesIO()
            Image.new("RGB", (200, 150), (10, 200, 30)).save(buffer, "JPEG")
            ImageCache(data.directory / CACHE_DIR).put(thumbnail_url(urls[i]), buffer.getvalue())
            kinds[photo_id] = "cached"
        else:
            kinds[photo_id] = "web"
    photos = photos.set_column(photos.schema.get_field_index("photo_image_url"), "photo_image_url", pa.array(urls))
    pq.write_table(photos, data.directory / "photos.parquet")
    first_inside = next(p for p, kind in kinds.items() if kind == "inside")
    store = built_store(root, data, {"target_photo_id": first_inside, "top_k": 59})
    process, port = start_serve(store, "--pictures", str(data.directory))
    try:
        yield Pictured(f"http://127.0.0.1:{port}", store, process, kinds)
    finally:
        stop(process)
    assert "Traceback" not in server_stderr(process), server_stderr(process)


def picture_urls(pictured: Pictured) -> dict[str, str]:
    reply = requests.post(
        pictured.url,
        data=b"SELECT photo_id, picture_url FROM analytics.top_k_neighbours FORMAT JSONCompact",
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    return {photo_id: url for photo_id, url in reply.json()["data"]}


def test_marts_carry_a_url_a_browser_can_load(pictured: Pictured) -> None:
    urls = picture_urls(pictured)
    assert len(urls) == len(pictured.kinds) - 1
    for photo_id, url in urls.items():
        if pictured.kinds[photo_id] in ("web", "cached"):
            assert url.startswith("https://images.example/"), url
            continue
        # the default of var picture_base_url: serve's default address
        assert url == f"http://127.0.0.1:8123/photos/{quote(photo_id, safe='')}.jpg", url
        reply = requests.get(pictured.url + urlsplit(url).path, timeout=60)
        if pictured.kinds[photo_id] == "inside":
            assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/jpeg", reply.text
            with Image.open(io.BytesIO(reply.content)) as picture:
                assert picture.format == "JPEG" and max(picture.size) == 256
        else:  # outside the folders, or not an image: like a photo serve does not know
            assert reply.status_code == 404, (photo_id, reply.status_code)
            assert b"root:x:0:0" not in reply.content


def test_cached_web_photos_and_unknown_ones(pictured: Pictured) -> None:
    cached = next(p for p, kind in pictured.kinds.items() if kind == "cached")
    reply = requests.get(f"{pictured.url}/photos/{quote(cached, safe='')}.jpg", timeout=60)
    assert reply.status_code == 200 and reply.content[:2] == b"\xff\xd8"
    web = next(p for p, kind in pictured.kinds.items() if kind == "web")
    for photo_id in (web, "no-such-photo", "../../etc/passwd", "%2e%2e%2fetc%2fpasswd"):
        reply = requests.get(f"{pictured.url}/photos/{quote(photo_id, safe='')}.jpg", timeout=60)
        assert reply.status_code == 404 and reply.headers["X-ClickHouse-Exception-Code"] == "0", photo_id


def test_the_view_gives_the_same_urls(pictured: Pictured) -> None:
    target = next(p for p, kind in pictured.kinds.items() if kind == "inside")
    reply = requests.post(
        pictured.url,
        params={"param_pid": target},
        data=b"SELECT photo_id, picture_url FROM analytics.neighbours(photo_id = {pid:String}, k = 59) "
        b"FORMAT JSONCompact",
        timeout=60,
    )
    assert {p: u for p, u in reply.json()["data"]} == picture_urls(pictured)


def test_no_pictures_without_the_option(pictured: Pictured) -> None:
    stop(pictured.process)
    process, port = start_serve(pictured.store)
    try:
        inside = next(p for p, kind in pictured.kinds.items() if kind == "inside")
        reply = requests.get(f"http://127.0.0.1:{port}/photos/{inside}.jpg", timeout=60)
        assert reply.status_code == 404 and "--pictures" in reply.text
    finally:
        stop(process)
    with client_for("embedded", path=pictured.store) as client:  # the store is free again
        assert client.command("SELECT count() FROM analytics.photos") == len(pictured.kinds)
