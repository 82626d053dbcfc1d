"""The insight marts computed directly with numpy and pandas: the ground truth for the SQL."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray


@dataclass
class Collection:
    photo_ids: list[str]
    embeddings: NDArray[np.float32]
    conversions: pd.DataFrame  # photo_id, keyword (as written)
    tags: pd.DataFrame  # photo_id, keyword (as written)

    def normalised_conversions(self) -> pd.DataFrame:
        frame = self.conversions.assign(keyword=self.conversions["keyword"].str.strip().str.lower())
        return frame[frame["keyword"] != ""]

    def normalised_tags(self) -> pd.DataFrame:
        frame = self.tags.assign(keyword=self.tags["keyword"].str.strip().str.lower())
        return frame[frame["keyword"] != ""]

    def downloads(self) -> pd.Series:
        counts = self.conversions.groupby("photo_id").size()
        return counts.reindex(self.photo_ids, fill_value=0)


def distances(x: NDArray[np.float32]) -> NDArray[np.float64]:
    y = x.astype(np.float64)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return 1.0 - y @ y.T


def neighbours(data: Collection, k: int) -> pd.DataFrame:
    """photo_id, neighbour_id, rank, dist: the k nearest other photos of every photo (exact)."""
    dist = distances(data.embeddings)
    np.fill_diagonal(dist, np.inf)
    rows = []
    for i, pid in enumerate(data.photo_ids):
        order = np.argsort(dist[i], kind="stable")[:k]
        rows += [(pid, data.photo_ids[j], rank, dist[i, j]) for rank, j in enumerate(order, start=1)]
    return pd.DataFrame(rows, columns=["photo_id", "neighbour_id", "rank", "dist"])


def keyword_suggestions(data: Collection, k: int, n: int, per_photo: int, exclude_own: bool = True) -> pd.DataFrame:
    near = neighbours(data, k)
    near = near[near["rank"] <= n].assign(similarity=lambda f: np.maximum(1.0 - f["dist"], 0.0))
    counts = data.normalised_conversions().groupby(["photo_id", "keyword"]).size().rename("downloads").reset_index()
    joined = near.merge(counts, left_on="neighbour_id", right_on="photo_id", suffixes=("", "_n"))
    joined["weighted"] = joined["similarity"] * joined["downloads"]
    scored = (
        joined.groupby(["photo_id", "keyword"])
        .agg(score=("weighted", "sum"), neighbour_downloads=("downloads", "sum"), neighbours=("neighbour_id", "count"))
        .reset_index()
    )
    own = pd.concat([data.normalised_conversions(), data.normalised_tags()])[["photo_id", "keyword"]]
    own_keys = set(zip(own["photo_id"], own["keyword"], strict=True))
    if exclude_own:
        keep = [(p, kw) not in own_keys for p, kw in zip(scored["photo_id"], scored["keyword"], strict=True)]
        scored = scored[keep]
    scored = scored[scored["score"] > 0].sort_values(["photo_id", "score", "keyword"], ascending=[True, False, True])
    scored["rank"] = scored.groupby("photo_id").cumcount() + 1
    return scored[scored["rank"] <= per_photo].reset_index(drop=True)


def underexposed(
    data: Collection, k: int, n: int, max_dist: float, min_lookalikes: int, min_downloads: float, max_share: float
) -> pd.DataFrame:
    near = neighbours(data, k)
    downloads = data.downloads()
    near = near[(near["rank"] <= n) & (near["dist"] <= max_dist)]
    rows = []
    for pid, group in near.groupby("photo_id"):
        theirs = downloads.loc[list(group["neighbour_id"])].to_numpy()
        median = float(np.median(theirs))
        own = int(downloads.loc[pid])
        if len(group) >= min_lookalikes and median >= min_downloads and own <= max_share * median:
            rows.append((pid, own, median, len(group), float(group["dist"].mean())))
    frame = pd.DataFrame(rows, columns=["photo_id", "downloads", "neighbour_downloads", "lookalikes", "mean_dist"])
    frame["gap"] = frame["neighbour_downloads"] - frame["downloads"]
    frame = frame.sort_values(["gap", "photo_id"], ascending=[False, True]).reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame


def search_relevance(
    data: Collection, keyword_vectors: dict[str, NDArray[np.float32]], k: int, min_searches: int
) -> pd.DataFrame:
    conversions = data.normalised_conversions()
    x = data.embeddings.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.array(data.photo_ids)
    rows = []
    for keyword, group in conversions.groupby("keyword"):
        if len(group) < min_searches or keyword not in keyword_vectors:
            continue
        q = keyword_vectors[keyword].astype(np.float64)
        dist = 1.0 - x @ (q / np.linalg.norm(q))
        order = np.lexsort((ids, dist))
        rank_of = {ids[j]: r for r, j in enumerate(order, start=1)}
        per_photo = group.groupby("photo_id").size()
        ranks = np.array([rank_of[p] for p in per_photo.index])
        within = ranks <= k
        rows.append(
            (
                keyword,
                len(group),
                len(per_photo),
                int(within.sum()),
                float(within.mean()),
                float((per_photo.to_numpy() / ranks * within).sum() / len(group)),
                int(ranks[within].min()) if within.any() else None,
            )
        )
    columns = ["keyword", "searches", "downloaded_photos", "found_photos", "recall_at_k", "mrr", "best_rank"]
    return pd.DataFrame(rows, columns=columns).sort_values("keyword").reset_index(drop=True)
