"""Saved searches kept in the dbt seed saved_searches.csv (columns name, text).

`python -m python_embed query --from-csv` embeds every row with the text tower
and saves them all in one insert; the file is checked as a whole first, so a
bad file writes nothing.  dbt seeds the same file as analytics.saved_searches,
which documents the searches next to the marts that answer them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bildsuche import config
from bildsuche.errors import InputDataError
from python_embed.queries import MAX_NAME, SavedQuery
from python_embed.text_models import TextEncoder, check_fit

SEED_FILE = "saved_searches.csv"
COLUMNS = ("name", "text")
EMBED_BATCH = 64
MAX_PROBLEMS = 10


@dataclass(frozen=True)
class SearchText:
    name: str
    text: str


def default_csv() -> Path:
    """saved_searches.csv in the dbt project's (first) seed path."""
    return config.seed_file(SEED_FILE)


def _problems(rows: csv.DictReader[str]) -> tuple[list[SearchText], list[str]]:
    searches: list[SearchText] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for row in rows:
        line = rows.line_num
        if None in row:
            problems.append(f"line {line}: more fields than the header's {len(COLUMNS)}")
            continue
        name = (row["name"] or "").strip()
        text = (row["text"] or "").strip()
        if not name:
            problems.append(f"line {line}: empty name")
        elif len(name) > MAX_NAME or not name.isprintable():
            problems.append(f"line {line}: name {name!r} is not 1 to {MAX_NAME} printable characters")
        elif name in first_line:
            problems.append(f"line {line}: name {name!r} again (first on line {first_line[name]})")
        else:
            first_line[name] = line
        if not text:
            problems.append(f"line {line}: empty text")
        searches.append(SearchText(name, text))
    return searches, problems


def read_saved_searches(path: Path) -> list[SearchText]:
    """The rows of ``path``; InputDataError lists what is wrong with the file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = csv.DictReader(handle)
            header = [name.strip() for name in rows.fieldnames or []]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise InputDataError(
                    f"{path}: missing column(s) {', '.join(missing)}; saved searches need a header "
                    f"{','.join(COLUMNS)} (found {','.join(header) or 'no header'})"
                )
            rows.fieldnames = header
            searches, problems = _problems(rows)
    except FileNotFoundError as exc:
        raise InputDataError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputDataError(f"{path}: not a readable UTF-8 CSV file ({exc})") from exc
    if problems:
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise InputDataError(f"{path}: " + "; ".join(problems[:MAX_PROBLEMS]) + more + "; nothing saved")
    if not searches:
        raise InputDataError(f"{path}: no saved searches (only a header)")
    return searches


def embed_saved_searches(
    encoder: TextEncoder, searches: Sequence[SearchText], image_model: str | None = None
) -> list[SavedQuery]:
    """Text searches embedded by ``encoder``, in batches: a CLIP model's text tower (``image_model``
    None: the encoder's own model), or a text model trained into ``image_model``'s space."""
    image_model = image_model or encoder.name
    if encoder.name != image_model:
        check_fit(encoder.name, image_model)
    queries: list[SavedQuery] = []
    for start in range(0, len(searches), EMBED_BATCH):
        batch = searches[start : start + EMBED_BATCH]
        vectors = encoder.embed_texts([s.text for s in batch])
        queries += [
            SavedQuery(s.name, "text", s.text, image_model, v.tolist(), text_model=encoder.name)
            for s, v in zip(batch, vectors, strict=True)
        ]
    return queries
