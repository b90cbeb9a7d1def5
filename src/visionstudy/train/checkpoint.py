"""Checkpoints: written atomically, loaded with `weights_only=True` and never unsafely.

A crash while writing leaves the previous file intact (write to a temporary file, fsync, rename);
a damaged or hostile file gives a `CheckpointError` naming it.
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionstudy.errors import CheckpointError
from visionstudy.fsutil import atomic_write_bytes

FORMAT = "visionstudy-checkpoint-1"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Serialise to memory, then write atomically (temporary file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def safe_load(path: Path, map_location: str | torch.device = "cpu", what: str = "checkpoint") -> Any:
    """`torch.load` with `weights_only=True` and never anything else: tensors, numbers, strings and
    containers load; a pickle that would build any other object is refused, unexecuted."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the {what} file is empty (a crash while writing?)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: the file holds objects other than plain weights and numbers "
            f"({str(exc).splitlines()[0][:200]}); it may be hostile and is not loaded"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(
            f"{path}: truncated or damaged {what} ({str(exc).splitlines()[0][:200]})"
        ) from None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a visionstudy checkpoint; anything else is a `CheckpointError`, nothing is executed."""
    if path.is_file() and path.stat().st_size > 0 and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (visionstudy writes .pt zip files under "
            "<run>/checkpoints/); pass a run directory or its checkpoints/best.pt"
        )
    state = safe_load(path, map_location, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a visionstudy checkpoint")
    return state


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states, as plain types `weights_only` can load."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
