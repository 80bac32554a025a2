"""The file store: a folder (MEDIA_DIR; a shared volume when the service is scaled out), files
named by the SHA-256 of their bytes, so a second copy of the same picture is stored once."""

import hashlib
import os
from pathlib import Path

from app.settings import settings


def _path(key: str) -> Path:
    if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
        raise ValueError("not a storage key")
    return Path(settings().media_dir) / key[:2] / key


def put(content: bytes) -> str:
    """Keep `content`; returns its key. Written to a temporary name, then renamed: a reader
    never sees half a file."""
    key = hashlib.sha256(content).hexdigest()
    path = _path(key)
    if path.exists():
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{key}.{os.getpid()}.part")
    partial.write_bytes(content)
    partial.replace(path)
    return key


def get(key: str) -> bytes:
    return _path(key).read_bytes()
