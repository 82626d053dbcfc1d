"""`python_embed build --ray` against the single-process build, side by side on this machine.

Both build the same source into fresh folders: an Unsplash-shaped zip whose photos (the
built-in sample's pictures as the CDN serves them: JPEG, 200 px wide, q=75) are served by a
loopback HTTP server, so every photo is downloaded, decoded and embedded.  Model: CLIP
ViT-B/32's architecture with random weights (the hub is not reachable here), as in
embed_throughput.py.  Ray is started once, locally, on every core of the machine; its start-up
is reported apart, and each Ray build starts its own actors (model load included, as the
single-process build loads its model).  Runs alternate (single, ray, single, ...); medians.

From the Ray builds' stage times the script also projects a GPU node: the model leaves the
CPUs, downloads overlap in threads, and decoding bounds the node at cores / (decode seconds
per photo, as one Ray task measures it alone).  That figure is extrapolated, not measured.

    python benchmarks/ray_build.py --photos 256 --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import statistics
import tempfile
import threading
import time
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import ray
from measure import machine
from PIL import Image

from python_embed.build import BuildOptions, BuildReport, RayOptions, build
from python_embed.demo_model import create_demo_model, model_name
from python_embed.embedder import ClipEmbedder, Precision
from python_embed.sample import generate_sample


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def source_zip(work: Path, count: int, cdn: Path, base: str) -> Path:
    """The sample's pictures as thumbnails in ``cdn`` (served at ``base``), and a zip naming them by URL."""
    sample = generate_sample(work / "sample", photos=count)
    rows = []
    for photo in sample.photos:
        with Image.open(photo.path) as img:
            img = img.convert("RGB")
            img.thumbnail((200, 10_000))
            img.save(cdn / f"{photo.photo_id}.jpg", "JPEG", quality=75)
        rows.append(f"{photo.photo_id}\t{base}/{photo.photo_id}.jpg\n")
    path = work / "photos.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("lite/photos.tsv000", "photo_id\tphoto_image_url\n" + "".join(rows))
    return path


def run_once(
    source: Path, out: Path, model: str, precision: Precision, args: argparse.Namespace, on_ray: bool
) -> BuildReport:
    shutil.rmtree(out, ignore_errors=True)
    options = BuildOptions(
        model=model_name(model),
        batch_size=args.batch_size,
        workers=args.concurrency,
        ray=RayOptions("local", model, precision) if on_ray else None,
    )
    return build(str(source), out, lambda: ClipEmbedder(model, precision=precision), options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=16, help="downloads in flight (per Ray fetch task)")
    parser.add_argument("--architecture", default="vit-b-32", choices=("vit-b-32", "tiny"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--gpu-node-cores", type=int, default=16, help="cores of the GPU node the projection assumes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.getLogger("ray").setLevel(logging.WARNING)

    started_at = machine()
    with tempfile.TemporaryDirectory(prefix="bildsuche-bench-") as tmp:
        work = Path(tmp)
        (work / "cdn").mkdir()
        server, base = serve(work / "cdn")
        source = source_zip(work, args.photos, work / "cdn", base)
        model = str(create_demo_model(work / "model", architecture=args.architecture))

        ray_started = time.perf_counter()
        ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
        ray_start_s = time.perf_counter() - ray_started
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            # Warm-up of both paths: imports, first kernels, Ray's first workers.
            run_once(source, work / "warm-single", model, args.precision, args, on_ray=False)
            run_once(source, work / "warm-ray", model, args.precision, args, on_ray=True)
            single_s, ray_s, reports = [], [], []
            for _ in range(args.repeats):
                single_s.append(run_once(source, work / "single", model, args.precision, args, False).seconds)
                report = run_once(source, work / "ray", model, args.precision, args, True)
                ray_s.append(report.seconds)
                reports.append(report)
            cluster = ray.cluster_resources()
        finally:
            ray.shutdown()
            server.shutdown()
        single_photos = pq.read_table(work / "single" / "photos.parquet")
        ray_photos = pq.read_table(work / "ray" / "photos.parquet")
        assert single_photos.column("photo_id").to_pylist() == ray_photos.column("photo_id").to_pylist()
        difference = np.abs(
            np.array(single_photos.column("photo_embed").to_pylist())
            - np.array(ray_photos.column("photo_embed").to_pylist())
        ).max()

    photos = single_photos.num_rows
    per_photo = {
        stage: statistics.median(getattr(r.times, stage) for r in reports) / photos
        for stage in ("fetch", "decode", "embed")
    }
    summary: dict[str, Any] = {
        "machine": started_at,
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "ray": ray.__version__,
        "ray_cpus": cluster.get("CPU", 0),
        "architecture": args.architecture,
        "precision": args.precision,
        "photos": photos,
        "ray_start_s": round(ray_start_s, 2),
        "single_s": round(statistics.median(single_s), 2),
        "ray_s": round(statistics.median(ray_s), 2),
        "ray_over_single": round(statistics.median(ray_s) / statistics.median(single_s), 2),
        "single_photos_per_s": round(photos / statistics.median(single_s), 2),
        "ray_photos_per_s": round(photos / statistics.median(ray_s), 2),
        "runs_single_s": [round(s, 2) for s in single_s],
        "runs_ray_s": [round(s, 2) for s in ray_s],
        "max_abs_embedding_difference": float(difference),
        # fetch: a download's wait (threads overlap them); decode and embed: CPU time of one task.
        "ray_ms_per_photo": {stage: round(1000 * value, 2) for stage, value in per_photo.items()},
        "gpu_node_cores": args.gpu_node_cores,
        "gpu_node_photos_per_s_bound_by_decode": round(args.gpu_node_cores / per_photo["decode"]),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(
        "\n| build | median s | photos/s |\n| --- | ---: | ---: |\n"
        f"| single process | {summary['single_s']} | {summary['single_photos_per_s']} |\n"
        f"| Ray (local, {summary['ray_cpus']:.0f} CPUs; start-up {summary['ray_start_s']} s apart) | "
        f"{summary['ray_s']} | {summary['ray_photos_per_s']} |\n"
        f"| Ray / single | {summary['ray_over_single']}× | |"
    )


if __name__ == "__main__":
    main()
