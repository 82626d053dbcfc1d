"""The image tower alone in several precisions, batch sizes and runtimes: images/s and how close to float32.

CLIP ViT-B/32's architecture with random weights (python_embed.demo_model; the
hub is not reachable here), on random 224 px inputs already preprocessed, so
that only the model's arithmetic is timed.  Variants, run in turn, each
--repeats times: float32, bfloat16 (weights and activations; what python_embed
runs on CPUs with AVX512-BF16) at several batch sizes, int8 dynamic
quantization of the Linear layers (torch.ao; activations quantized per batch,
the rest float32), and, where their libraries are installed (benchmark-only,
not project dependencies; a variant whose library is missing or that fails is
skipped with the reason printed): ONNX Runtime float32 on the exported image
tower (vision model + projection; all graph optimizations), OpenVINO float32
and OpenVINO with inference precision bf16 (converted from the torch module),
and torch.compile of the bf16 model (skipped when compiling takes longer than
--compile-limit seconds).  Cosines are to the float32 embeddings, plain and
centred on their mean (random weights put every embedding near one direction;
the centred cosine compares what differs between images).

    python benchmarks/embed_variants.py --images 128 --repeats 3
    pip install onnxruntime onnx openvino   # for the runtime variants
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.metadata
import signal
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from measure import machine
from transformers import CLIPModel

from python_embed.demo_model import create_demo_model

BATCH = 32
Run = Callable[[torch.Tensor], np.ndarray]  # a batch of float32 pixels -> its float32 embeddings


class Tower(torch.nn.Module):
    """The image tower as one module, pixels to projected embedding (what the runtimes export)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        f = self.model.get_image_features(pixel_values=pixel_values)
        return getattr(f, "pooler_output", f)


def torch_run(tower: Callable[[torch.Tensor], torch.Tensor], dtype: torch.dtype) -> Run:
    """`tower` (a Tower, compiled or not) on batches cast to `dtype`."""

    def run(batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return tower(batch.to(dtype)).float().numpy()

    return run


def features(run: Run, pixels: torch.Tensor, batch: int) -> np.ndarray:
    array = np.concatenate([run(pixels[start : start + batch]) for start in range(0, len(pixels), batch)])
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def version(package: str) -> str:
    return f"{package} {importlib.metadata.version(package)}"


def onnxruntime_run(base: Any, example: torch.Tensor, directory: Path) -> tuple[Run, str]:
    import onnxruntime as ort

    path = directory / "tower.onnx"
    with torch.inference_mode():
        torch.onnx.export(
            Tower(base).eval(), (example,), str(path), input_names=["pixel_values"], output_names=["embeds"],
            dynamic_axes={"pixel_values": {0: "batch"}, "embeds": {0: "batch"}}, opset_version=17, dynamo=False,
        )  # fmt: skip
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(batch: torch.Tensor) -> np.ndarray:
        return session.run(None, {"pixel_values": batch.numpy()})[0]

    return run, f"{version('onnxruntime')}, {version('onnx')}, TorchScript exporter, opset 17, ORT_ENABLE_ALL"


def openvino_run(base: Any, example: torch.Tensor, precision: str) -> tuple[Run, str]:
    import openvino as ov

    with torch.inference_mode():
        converted = ov.convert_model(Tower(base).eval(), example_input=example)
    converted.reshape([-1, 3, 224, 224])
    core = ov.Core()
    compiled = core.compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    got = compiled.get_property("INFERENCE_PRECISION_HINT")

    def run(batch: torch.Tensor) -> np.ndarray:
        return request.infer({0: batch.numpy()})[0].astype(np.float32, copy=False)

    return run, f"{version('openvino')}, INFERENCE_PRECISION_HINT {precision} (compiled: {got})"


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def compiled_run(bf16: Any, example: torch.Tensor, limit: int) -> tuple[Run, str]:
    tower = torch.compile(Tower(bf16).eval())
    started = time.perf_counter()
    with time_limit(limit), torch.inference_mode():
        tower(example.to(torch.bfloat16))  # compiles for this batch size
    note = f"torch {torch.__version__}, inductor, compiled in {time.perf_counter() - started:.0f} s"
    return torch_run(tower, torch.bfloat16), note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--architecture", default="vit-b-32", choices=("vit-b-32", "tiny"))
    parser.add_argument("--compile-limit", type=int, default=300, help="seconds torch.compile may take")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # torch.ao's deprecation notice, the exporters' notes
    print(machine(), flush=True)
    directory = Path(tempfile.mkdtemp(prefix="bildsuche-variants-"))
    model_dir = create_demo_model(directory / "m", architecture=args.architecture)
    base = CLIPModel.from_pretrained(model_dir).eval()
    pixels = torch.from_numpy(np.random.default_rng(0).standard_normal((args.images, 3, 224, 224), dtype=np.float32))
    example = pixels[:BATCH]
    bf16 = copy.deepcopy(base).to(torch.bfloat16)
    int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(base), {torch.nn.Linear}, dtype=torch.qint8)
    variants: dict[str, tuple[Run, int]] = {
        "fp32, batch 32": (torch_run(Tower(base), torch.float32), 32),
        "bf16, batch 16": (torch_run(Tower(bf16), torch.bfloat16), 16),
        "bf16, batch 32 (python_embed)": (torch_run(Tower(bf16), torch.bfloat16), 32),
        "bf16, batch 64": (torch_run(Tower(bf16), torch.bfloat16), 64),
        "int8 dynamic, batch 32": (torch_run(Tower(int8), torch.float32), 32),
    }
    optional: dict[str, Callable[[], tuple[Run, str]]] = {
        "ONNX Runtime fp32, batch 32": lambda: onnxruntime_run(base, example, directory),
        "OpenVINO fp32, batch 32": lambda: openvino_run(base, example, "f32"),
        "OpenVINO bf16 hint, batch 32": lambda: openvino_run(base, example, "bf16"),
        "torch.compile bf16, batch 32": lambda: compiled_run(bf16, example, args.compile_limit),
    }
    for name, build in optional.items():
        started = time.perf_counter()
        try:
            run, note = build()
        except ImportError as error:
            print(f"skipped {name}: {error.name or error} is not installed", flush=True)
            continue
        except Exception as error:  # a variant that fails is reported, not fatal
            print(f"skipped {name}: {type(error).__name__}: {str(error).splitlines()[0][:300]}", flush=True)
            continue
        print(f"{name}: {note}; set up in {time.perf_counter() - started:.0f} s", flush=True)
        variants[name] = (run, BATCH)
    reference = features(variants["fp32, batch 32"][0], pixels, 32)
    centre = reference.mean(axis=0)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cosines: dict[str, tuple[float, float, float]] = {}
    for name, (run, batch) in variants.items():  # warm-up; the cosines
        got = features(run, pixels, batch)
        a, b = reference - centre, got - centre
        centred = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        cosines[name] = (float(np.sum(reference * got, axis=1).min()), float(centred.min()), float(centred.mean()))
    for _ in range(args.repeats):
        for name, (run, batch) in variants.items():
            started = time.perf_counter()
            features(run, pixels, batch)
            rates[name].append(len(pixels) / (time.perf_counter() - started))
    fp32 = statistics.median(rates["fp32, batch 32"])
    print(f"\n{args.images} images, {args.architecture}, medians of {args.repeats}")
    print("| variant | images/s | runs | vs fp32 | cosine min | centred cosine min | centred cosine mean |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, runs in rates.items():
        rate = statistics.median(runs)
        print(f"| {name} | {rate:.1f} | {', '.join(f'{r:.1f}' for r in runs)} | {rate / fp32:.2f}x"
              f" | {cosines[name][0]:.5f} | {cosines[name][1]:.5f} | {cosines[name][2]:.5f} |")  # fmt: skip


if __name__ == "__main__":
    main()
