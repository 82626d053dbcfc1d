"""Full disks and read-only folders: one clear line, exit status 1, earlier outputs intact.

A full disk is made three ways: a file size limit (RLIMIT_FSIZE: writes past
it fail with EFBIG, on any machine), a small tmpfs in a user namespace
(ENOSPC, where the kernel allows unprivileged namespaces; full run), and a
store whose writes fail the same way.  A read-only folder is a chmod (and,
when the tests run as root, a child without CAP_DAC_OVERRIDE).
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from bildsuche.errors import OutputError, UsageError
from bildsuche.store import client_for
from datasets_helpers import write_synthetic
from python_embed.build import BuildOptions, build
from python_embed.checkpoint import STATE_DIR, STATE_FILE, Checkpoint
from python_embed.embedder import ClipEmbedder
from python_embed.fetch import ImageCache
from python_embed.writer import stale_parts
from reliability.stores import RAW_FINGERPRINT_SQL, PayloadStore
from seeds_loader import load

FILE_LIMIT = 96 * 1024  # a shard of 4 photos fits; photos.parquet of 60 does not


def folder_of_photos(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (48, 40), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256)).save(folder / f"p{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return folder_of_photos(tmp_path_factory.mktemp("photos") / "folder", 60)


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> dict[str, bytes]:
    """The files of an earlier, smaller build: what a failed build must leave in place."""
    out = tmp_path_factory.mktemp("earlier") / "out"
    folder = folder_of_photos(out.parent / "few", 3)
    build(str(folder), out, lambda: ClipEmbedder(str(demo_model_dir)))
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def place(out: Path, files: dict[str, bytes]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def build_cli(
    source: Path, out: Path, model: Path, *, prefix: tuple[str, ...] = (), **kwargs: object
) -> subprocess.CompletedProcess[str]:
    command = [*prefix, sys.executable, "-m", "python_embed", "build", str(source), "--out", str(out)]
    command += ["--model", str(model), "--batch-size", "4", "--concurrency", "2"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]


def file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("python_embed: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_file_size_limit_during_the_final_write(
    tmp_path: Path, photos: Path, earlier: dict[str, bytes], demo_model_dir: Path
) -> None:
    out = tmp_path / "out"
    place(out, earlier)
    done = build_cli(photos, out, demo_model_dir, preexec_fn=file_size_limit(FILE_LIMIT))
    assert_one_line_error(done, "cannot write", "photos.parquet", "File too large")
    assert outputs(out) == earlier  # the earlier set, whole: no file replaced, none half-written
    assert not stale_parts(out)
    shards = list((out / STATE_DIR).glob("shard-*.parquet"))
    assert len(shards) == 15  # every batch kept: the rerun embeds nothing again
    report = build(str(photos), out, lambda: ClipEmbedder(str(demo_model_dir)), BuildOptions(batch_size=4))
    assert report.resumed == 60 and report.embedded == 0
    assert pq.read_table(out / "photos.parquet").num_rows == 60


@pytest.mark.full
def test_disk_full_on_a_small_tmpfs(
    tmp_path: Path, photos: Path, earlier: dict[str, bytes], demo_model_dir: Path
) -> None:
    namespaces = ["unshare", "--user", "--map-root-user", "--mount"]
    if not shutil.which("unshare") or subprocess.run([*namespaces, "true"], capture_output=True).returncode:
        pytest.skip("no unprivileged user and mount namespaces here")
    place(tmp_path / "earlier", earlier)
    out = tmp_path / "small"
    out.mkdir()
    # Inside the namespace: a 1 MiB tmpfs over OUT, the earlier files, 900 KiB of ballast, then the build.
    script = f"""
        mount -t tmpfs -o size=1m tmpfs "{out}" && cp "{tmp_path}"/earlier/* "{out}"/ &&
        dd if=/dev/zero of="{out}/ballast" bs=1k count=900 status=none
        "{sys.executable}" -m python_embed build "{photos}" --out "{out}" --model "{demo_model_dir}" \\
            --batch-size 4 --concurrency 2
        echo "status=$?"
        cd "{out}" && ls -a && sha256sum *.parquet
    """
    done = subprocess.run([*namespaces, "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert "status=1" in done.stdout, done.stdout + done.stderr
    assert "No space left on device" in done.stderr and "Traceback" not in done.stderr, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    sums = {parts[1]: parts[0] for parts in lines if len(parts) == 2 and len(parts[0]) == 64}
    assert sums == {name: hashlib.sha256(data).hexdigest() for name, data in earlier.items()}
    assert not [parts for parts in lines if parts and parts[-1].endswith(".tmp")]


def unprivileged() -> tuple[str, ...]:
    """A command prefix without the capabilities that let root write into read-only folders."""
    if os.geteuid() != 0:
        return ()
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only folder would not stop this process")
    return ("setpriv", "--inh-caps=-all", "--bounding-set=-all")


def test_read_only_output_folder(tmp_path: Path, photos: Path, earlier: dict[str, bytes], demo_model_dir: Path) -> None:
    out = tmp_path / "out"
    place(out, earlier)
    out.chmod(0o555)
    try:
        done = build_cli(photos, out, demo_model_dir, prefix=unprivileged())
        assert_one_line_error(done, "cannot write", "Permission denied")
        assert outputs(out) == earlier
    finally:
        out.chmod(0o755)


def test_report_into_a_read_only_folder(tmp_path: Path, payload_store: PayloadStore) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("the earlier report")
    out.chmod(0o555)
    try:
        for folder in (out, out / "sub"):
            done = subprocess.run(
                [*unprivileged(), sys.executable, "-m", "bildsuche.cli", "report", "--store", str(payload_store.store),
                 "--out", str(folder), "--offline"],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
            assert done.stderr.strip().splitlines()[-1].startswith("bildsuche: error: cannot "), done.stderr
            assert "Permission denied" in done.stderr
        assert (out / "report.html").read_text() == "the earlier report"
    finally:
        out.chmod(0o755)


def test_read_only_download_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders; the build CLI test above covers this path as a child")
        with pytest.raises(OutputError, match="cannot write to the download cache"):
            ImageCache(cache).put("https://images.example/x", b"bytes")
    finally:
        cache.chmod(0o755)


def test_a_damaged_build_state_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / STATE_DIR / STATE_FILE
    state.parent.mkdir()
    for damaged in ('{"model": "m", "sou', "[1, 2]", "\udcff".encode("utf-8", "surrogatepass").decode("latin-1")):
        state.write_text(damaged, encoding="latin-1")
        with pytest.raises(UsageError, match=r"not a build state bildsuche wrote.*--restart"):
            Checkpoint(tmp_path, "m", "src")
    Checkpoint(tmp_path, "m", "src", restart=True)
    assert state.is_file() and not list(state.parent.glob(".*.tmp"))


def test_store_writes_failing_mid_load_leave_the_tables(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with client_for("embedded", path=store) as client:
        load(client, write_synthetic(tmp_path / "small", n=40).directory)
        before = str(client.query(RAW_FINGERPRINT_SQL).result_rows)
    big = write_synthetic(tmp_path / "big", n=1500, seed=4).directory  # ~3 MB of vectors: past the limit
    done = subprocess.run(
        [sys.executable, "-m", "seeds_loader", str(big)],
        capture_output=True, text=True, timeout=300, preexec_fn=file_size_limit(1 << 20),
        env={**os.environ, "BILDSUCHE_DB_PATH": str(store)},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]  # on a line of its own, after the progress line
    assert last.startswith("seeds_loader: error: loading failed, raw tables unchanged: File too large"), done.stderr
    assert "Traceback" not in done.stderr
    with client_for("embedded", path=store) as client:
        assert str(client.query(RAW_FINGERPRINT_SQL).result_rows) == before
        assert client.command("SELECT count() FROM system.tables WHERE endsWith(name, '__loading')") == 0
        load(client, big)  # the store still works: the same load, without the limit
        assert client.command("SELECT count() FROM raw.photos") == 1500
