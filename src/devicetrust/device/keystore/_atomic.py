"""Atomic, private file writes: a crash leaves the old file or the new one, never a mix, and
no other user can read either (0600, whatever the umask)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from devicetrust.device.keystore._base import KeystoreError


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temp file (0600), fsync, rename, fsync of the directory;
    `keystore.write_failed` (and `path` unchanged) when the disk refuses."""
    try:
        _replace(path, data)
    except OSError as exc:
        raise KeystoreError(
            f"cannot write {path}: {exc.strerror}", code="keystore.write_failed"
        ) from exc


def _replace(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def private_directory(path: Path) -> Path:
    """`path` created 0700 if missing (with its parents)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeystoreError(
            f"cannot create {path}: {exc.strerror}", code="keystore.write_failed"
        ) from exc
    return path
