"""Sources and checks for build tests: Unsplash-Lite-shaped zips over the faulty loopback CDN,
their expected faults, and the comparison of two data sets."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from imageserver import ImageServer
from python_embed.checkpoint import Checkpoint
from python_embed.fetch import FetchConfig

GOOD = [f"good{i:02d}" for i in range(12)]
FAULTS = {
    "gone": ("404", "fetch", "http_404"),
    "html": ("html", "fetch", "not_image"),
    "trunc": ("truncated", "decode", "OSError"),
    "slow": ("slow", "fetch", "timeout"),
    "down": ("always503", "fetch", "http_503"),
    "empty": ("empty", "fetch", "empty"),
}
FAST_FETCH = FetchConfig(connect_timeout=2.0, read_timeout=0.4, retries=2, backoff=0.01)


def unsplash_zip(path: Path, server: ImageServer) -> dict[str, str]:
    """An Unsplash-Lite-shaped zip with the release's quirks; returns photo_id -> url."""
    urls = {pid: server.url("ok", pid) for pid in GOOD}
    urls["flaky1"] = server.url("flaky", "flaky1")  # 503 twice, then fine
    urls["busy1"] = server.url("busy", "busy1")  # 429 with Retry-After, then fine
    urls.update({pid: server.url(kind, pid) for pid, (kind, _, _) in FAULTS.items()})
    urls["badurl"] = "htp:/not a url"
    header = "photo_id\tphoto_url\tphoto_image_url\tphoto_description\tphoto_featured\tstats_downloads\n"
    rows = []
    for i, (pid, url) in enumerate(urls.items()):
        description = '"two\nlines\tand a tab"' if i == 0 else ("plain" if i % 2 else "")
        rows.append(
            f" {pid} \thttps://unsplash.com/photos/{pid}\t{url} \t{description}\t{'t' if i % 3 else 'f'}\t{i}\n"
        )
    half = len(rows) // 2
    conversions = "converted_at\tconversion_type\tkeyword\tphoto_id\tanonymous_user_id\tconversion_country\n"
    conversions += "".join(
        f"2021-0{1 + n % 9}-01 10:00:00\tdownload\t{kw}\t{pid}\tu{n}\tDE\n"
        for n, (pid, kw) in enumerate([(p, k) for p in urls for k in ("Sky ", "tree")])
    )
    keywords = "photo_id\tkeyword\tai_service_1_confidence\tai_service_2_confidence\tsuggested_by_user\n"
    keywords += "".join(f"{pid}\tnature\t0.9\t\tf\n" for pid in urls)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("unsplash-research-dataset-lite/photos.tsv000", header + "".join(rows[:half]))
        zf.writestr("unsplash-research-dataset-lite/photos.tsv001", header + "".join(rows[half:]))
        zf.writestr("unsplash-research-dataset-lite/conversions.tsv000", conversions)
        zf.writestr("unsplash-research-dataset-lite/keywords.tsv000", keywords)
        zf.writestr("__MACOSX/unsplash-research-dataset-lite/._photos.tsv000", "\x00\x05junk")
        zf.writestr("unsplash-research-dataset-lite/README.md", "readme")
    return urls


def night(path: Path, photos: dict[str, str]) -> Path:
    """An Unsplash-shaped zip: these photos (photo_id -> URL), two conversions and a keyword each."""
    rows = "".join(f"{pid}\t{url}\tabout {pid}\n" for pid, url in photos.items())
    conversions = "".join(f"{pid}\tkw{i % 3}\n{pid}\tsky\n" for i, pid in enumerate(photos))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("lite/photos.tsv000", "photo_id\tphoto_image_url\tphoto_description\n" + rows)
        zf.writestr("lite/conversions.tsv000", "photo_id\tkeyword\n" + conversions)
        zf.writestr("lite/keywords.tsv000", "photo_id\tkeyword\n" + "".join(f"{pid}\tnature\n" for pid in photos))
    return path


def assert_same_data_set(out: Path, fresh: Path, *, atol: float = 1e-6, failures: bool = True) -> None:
    """The files of two data sets equal, embeddings within ``atol``; failures.parquet too unless told not."""
    for name in ("photos", "conversions", "keywords", "failures")[: 4 if failures else 3]:
        if not (fresh / f"{name}.parquet").exists():
            assert not (out / f"{name}.parquet").exists(), name
            continue
        got, want = pq.read_table(out / f"{name}.parquet"), pq.read_table(fresh / f"{name}.parquet")
        if name == "photos":
            np.testing.assert_allclose(
                np.array(got.column("photo_embed").to_pylist()),
                np.array(want.column("photo_embed").to_pylist()),
                atol=atol,
            )
            got, want = got.drop_columns(["photo_embed"]), want.drop_columns(["photo_embed"])
        assert got.equals(want), name


def interrupt_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    """Stop the next build with Ctrl-C (KeyboardInterrupt) once it has checkpointed ``batches``
    batches; the checkpoint works normally again after that."""
    original = Checkpoint.append
    calls = {"n": 0}

    def interrupted(self: Checkpoint, photos: list, embeddings: np.ndarray) -> None:
        original(self, photos, embeddings)
        calls["n"] += 1
        if calls["n"] == batches:
            monkeypatch.setattr(Checkpoint, "append", original)
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "append", interrupted)
