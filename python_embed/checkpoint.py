"""Resumable builds: every embedded batch is a shard on disk until the build ends.

Shards are written atomically under ``OUT/.bildsuche-build/``; a build that is
interrupted (Ctrl-C, a killed process) leaves whole shards only, and the next
build with the same model skips every photo they hold.  The final files are
assembled from the shards, then the folder is removed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bildsuche import files
from bildsuche.errors import OutputError, UsageError
from python_embed.types import Embeddings, PhotoSource
from python_embed.writer import parquet

STATE_DIR = ".bildsuche-build"
STATE_FILE = "state.json"


class Checkpoint:
    def __init__(self, out: Path, model: str, source: str, *, restart: bool = False) -> None:
        self.dir = Path(out) / STATE_DIR
        state = {"model": model, "source": source}
        state_file = self.dir / STATE_FILE
        try:
            if restart and self.dir.exists():
                shutil.rmtree(self.dir)
            if state_file.is_file():
                previous = _read_state(state_file)
                if previous != state:
                    raise UsageError(
                        f"{out} holds an unfinished build of {previous.get('source')!r} with model "
                        f"{previous.get('model')!r}; finish it with the same source and model, or pass --restart"
                    )
            self.dir.mkdir(parents=True, exist_ok=True)
            for stale in files.stale_parts(self.dir):
                stale.unlink(missing_ok=True)
            _write_state(state_file, state)
        except OSError as exc:
            raise OutputError(f"cannot write the build state in {self.dir}: {exc.strerror or exc}") from exc
        self._next = 1 + max((int(p.stem.split("-")[1]) for p in self.shards()), default=0)

    def shards(self) -> list[Path]:
        return sorted(self.dir.glob("shard-*.parquet"))

    def done_ids(self) -> set[str]:
        done: set[str] = set()
        for shard in self.shards():
            done.update(pq.read_table(shard, columns=["photo_id"]).column("photo_id").to_pylist())
        return done

    def append(self, photos: list[PhotoSource], embeddings: Embeddings) -> None:
        if not photos:
            return
        dim = embeddings.shape[1]
        offsets = pa.array(np.arange(0, (len(photos) + 1) * dim, dim, dtype=np.int32))
        table = pa.table(
            {
                "photo_id": pa.array([p.photo_id for p in photos], pa.string()),
                "photo_embed": pa.ListArray.from_arrays(offsets, pa.array(embeddings.reshape(-1), pa.float32())),
            }
        )
        files.write_file(self.dir / f"shard-{self._next:06d}.parquet", parquet(table))
        self._next += 1

    def embeddings(self) -> pa.Table:
        shards = self.shards()
        if not shards:
            return pa.table(
                {"photo_id": pa.array([], pa.string()), "photo_embed": pa.array([], pa.list_(pa.float32()))}
            )
        return pa.concat_tables(pq.read_table(s) for s in shards)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_state(path: Path) -> dict[str, str]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a build state bildsuche wrote ({exc}); pass --restart") from exc
    if not isinstance(state, dict):
        raise UsageError(f"{path} is not a build state bildsuche wrote; pass --restart")
    return state


def _write_state(path: Path, state: dict[str, str]) -> None:
    # Whole or not at all: a process killed here leaves the old state or the new one, never half.
    files.write_text(path, json.dumps(state))
