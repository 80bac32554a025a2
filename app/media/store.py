"""The file store for media citizens send: files named by the SHA-256 of their bytes, so a second
copy of the same picture is stored once.

- A folder (`MEDIA_DIR`, the default; a shared volume when the service is scaled out), or
- an S3-compatible object store (`MEDIA_S3_BUCKET`, with `MEDIA_S3_ENDPOINT_URL` for one that is
  not AWS: MinIO, or a government cloud's OSS/COS/OBS), through boto3. Its credentials and region
  come from boto3's own chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`,
  an instance role), never from our settings.

Both are blocking: callers run them in a thread.
"""

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from app.settings import settings


class Missing(Exception):
    """The store has no file under a key a media row names (e.g. moved to another store)."""


def _check(key: str) -> str:
    if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
        raise ValueError("not a storage key")
    return key


def put(content: bytes) -> str:
    """Keep `content`; returns its key. Written whole or not at all: a reader never sees half a
    file."""
    key = hashlib.sha256(content).hexdigest()
    if settings().media_s3_bucket:
        _s3_put(key, content)
    else:
        _folder_put(key, content)
    return key


def get(key: str) -> bytes:
    """The file kept under `key`; Missing if the store has none."""
    if settings().media_s3_bucket:
        return _s3_get(_check(key))
    try:
        return _folder_path(key).read_bytes()
    except FileNotFoundError as exc:
        raise Missing(key) from exc


def _folder_path(key: str) -> Path:
    return Path(settings().media_dir) / _check(key)[:2] / key


def _folder_put(key: str, content: bytes) -> None:
    path = _folder_path(key)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{key}.{os.getpid()}.part")
    partial.write_bytes(content)
    partial.replace(path)  # a rename: atomic on one file system


_clients: dict[tuple[str | None, str], Any] = {}
_clients_lock = threading.Lock()


def _client(endpoint_url: str | None, addressing: str) -> Any:
    """One client per endpoint, made once under a lock from a session of its own (boto3's
    default session is not thread-safe; its clients are), with bounded time and retries.
    Checksums only where the API requires them: the streaming checksum boto3 sends by default
    is refused by several S3-compatible stores."""
    with _clients_lock:
        found = _clients.get((endpoint_url, addressing))
        if found is None:
            found = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    s3={"addressing_style": addressing},
                ),
            )
            _clients[(endpoint_url, addressing)] = found
        return found


def _object(key: str) -> tuple[Any, str, str]:
    config = settings()
    client = _client(config.media_s3_endpoint_url or None, config.media_s3_addressing_style)
    return client, config.media_s3_bucket, f"{config.media_s3_prefix}{key[:2]}/{key}"


def _s3_put(key: str, content: bytes) -> None:
    # No HEAD first (it needs the list permission to tell "absent" from "forbidden"): the key
    # is the bytes' hash, so writing the same object again changes nothing. A PUT is atomic.
    client, bucket, name = _object(_check(key))
    client.put_object(Bucket=bucket, Key=name, Body=content)


def _s3_get(key: str) -> bytes:
    client, bucket, name = _object(key)
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=name)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise Missing(key) from exc
        raise
    return body
