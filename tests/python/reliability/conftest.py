"""The battery's shared store: synthetic photos whose ids include every injection payload."""

from __future__ import annotations

import pytest

from datasets_helpers import built_store, write_synthetic
from python_embed.demo_model import DEMO_MODEL_NAME
from reliability.payloads import photo_ids
from reliability.stores import PayloadStore


@pytest.fixture(scope="session")
def payload_store(tmp_path_factory: pytest.TempPathFactory) -> PayloadStore:
    """A loaded store with marts built (target p0005, k 10); tests that rebuild marts restore that target."""
    root = tmp_path_factory.mktemp("payload-store")
    # Recorded as the demo model's: the battery saves searches embedded by it.
    data = write_synthetic(root / "dataset", n=300, extra_ids=tuple(photo_ids()), model=DEMO_MODEL_NAME)
    store = built_store(root, data, {"target_photo_id": "p0005", "top_k": 10})
    return PayloadStore(data, store, root)
