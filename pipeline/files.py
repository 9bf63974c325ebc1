"""Small file helpers: atomic writes, content hashes, and where a model's weights are.

Every file the pipeline writes for users (watchlist records, photos and
caches, scan outputs, evidence reports, archive work files) goes through
:func:`atomic_write_bytes`, so a crash or a full disk mid-write leaves either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import hub_utils
from hub_utils.resolve import sha256_file  # one implementation: hub_utils verifies model files with it

__all__ = ["atomic_write_bytes", "sha256_file", "weights_path"]


def weights_path(name: str) -> Path:
    """Local path of the manifest entry ``name`` (``srcnn-x3``, ``deblurgan-v2-tflite``...).

    Resolved and sha256-checked by ``hub_utils.resolve`` (local -> Hub cache
    -> bundled), looked up at call time; raises what it raises when the
    file is missing or does not match.
    """
    return Path(hub_utils.resolve(name).path)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()  # read once at import: os.umask is process-wide and racy under threads


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False,
                       parents: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The parent folder is created if needed (unless ``parents=False``: then a
    missing folder is an error); the file gets ordinary permissions
    (``0666`` minus the umask, not ``mkstemp``'s ``0600``).  ``durable=True``
    also flushes the data to disk before the rename (for records that must
    survive a power cut, such as the watchlist).
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
