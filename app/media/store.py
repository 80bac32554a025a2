"""The file store for media citizens send: files named by the SHA-256 of their bytes, so a second
copy of the same picture is stored once.

- A folder (`MEDIA_DIR`, the default; a shared volume when the service is scaled out), or
- an S3-compatible object store (`MEDIA_S3_BUCKET`, with `MEDIA_S3_ENDPOINT_URL` for one that is
  not AWS: MinIO, or a government cloud's OSS/COS/OBS), through boto3. Its credentials and region
  come from boto3's own chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`,
  an instance role), never from our settings.

Both are blocking: callers run them in a thread.
"""

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from app.settings import settings


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
    if settings().media_s3_bucket:
        return _s3_get(_check(key))
    return _folder_path(key).read_bytes()


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


@functools.cache
def _client(endpoint_url: str | None) -> Any:
    """One client per endpoint (boto3's clients are thread-safe), with bounded time and retries."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
        ),
    )


def _object(key: str) -> tuple[Any, str, str]:
    config = settings()
    client = _client(config.media_s3_endpoint_url or None)
    return client, config.media_s3_bucket, f"{config.media_s3_prefix}{key[:2]}/{key}"


def _s3_put(key: str, content: bytes) -> None:
    client, bucket, name = _object(_check(key))
    try:
        client.head_object(Bucket=bucket, Key=name)
        return  # the same bytes are there already
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    # A PUT is atomic: the object appears whole. The store checks the bytes against their SHA-256.
    client.put_object(Bucket=bucket, Key=name, Body=content, ChecksumAlgorithm="SHA256")


def _s3_get(key: str) -> bytes:
    client, bucket, name = _object(key)
    body: bytes = client.get_object(Bucket=bucket, Key=name)["Body"].read()
    return body
