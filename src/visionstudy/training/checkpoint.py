"""Checkpoints: written atomically, loaded with `weights_only=True` and never unsafely.

A crash while writing leaves the previous file intact (write to a temporary file, fsync, rename);
a damaged or hostile file gives a `CheckpointError` naming it. The file is a short header (magic
and the SHA-256 of the rest) followed by the bytes of `torch.save`: a flipped bit anywhere — which
a zip of tensors would otherwise load silently as a wrong weight — is detected before unpickling.
Read one without visionstudy: `torch.load(io.BytesIO(data[len(MAGIC) + 32:]), weights_only=True)`.
"""

from __future__ import annotations

import hashlib
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
MAGIC = b"VISIONSTUDY-CKPT-2\n"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Serialise to memory, seal with a SHA-256, then write atomically (temp file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    atomic_write_bytes(path, seal(buffer.getvalue()))


def seal(blob: bytes) -> bytes:
    """The checkpoint file's bytes for serialised state `blob`: magic, SHA-256, payload."""
    return MAGIC + hashlib.sha256(blob).digest() + blob


def safe_load(path: Path, map_location: str | torch.device = "cpu", what: str = "checkpoint") -> Any:
    """`torch.load` with `weights_only=True` and never anything else: tensors, numbers, strings and
    containers load; a pickle that would build any other object is refused, unexecuted."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the {what} file is empty (a crash while writing?)")
    return _load(path, path, map_location, what)


def _load(source: Path | io.BytesIO, path: Path, map_location: str | torch.device, what: str) -> Any:
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
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
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    data = path.read_bytes()
    if not data:
        raise CheckpointError(f"{path}: the checkpoint is empty (a crash while writing?)")
    if not data.startswith(MAGIC):
        raise CheckpointError(
            f"{path}: not a visionstudy checkpoint (they are written under <run>/checkpoints/); pass "
            "a run directory or its checkpoints/best.pt"
        )
    digest, blob = data[len(MAGIC):len(MAGIC) + 32], data[len(MAGIC) + 32:]
    if hashlib.sha256(blob).digest() != digest:
        raise CheckpointError(f"{path}: damaged or truncated checkpoint: its contents do not match their "
                              "SHA-256; delete it (a run resumes from its other checkpoint or restarts)")
    state = _load(io.BytesIO(blob), path, map_location, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a visionstudy checkpoint")
    return state


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states, as plain types `weights_only` can load."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *map(float, np_state[2:])],  # type: ignore[index]  # numpy's stub calls the tuple a dict
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
