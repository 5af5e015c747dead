"""Checkpoint files are hashed as they are written: the recorded size and SHA-256 are the file's."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

from herexp import checkpoint


def test_a_replay_buffer_sized_array_is_recorded_as_written(tmp_path: Path) -> None:
    """Pickle protocol 5 writes arrays over 64 KiB as out-of-frame buffers (``PickleBuffer``), not bytes."""
    buffer = {"observations": np.arange(1 << 20, dtype=np.float32).reshape(-1, 16)}  # 4 MiB
    file = tmp_path / "replay_buffer.pkl"
    record = checkpoint._write(file, lambda f: pickle.dump(buffer, f, protocol=pickle.HIGHEST_PROTOCOL))
    data = file.read_bytes()
    assert record == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert record["size"] > 4 * 1024 * 1024
    assert np.array_equal(pickle.loads(data)["observations"], buffer["observations"])
