"""The outbound notification: signed JSON POSTed to the registration's URL."""

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx

# Short: the receiver only has to acknowledge ("poll now"), and a worker slot is held meanwhile.
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
TIMESTAMP_HEADER = "X-Govinbox-Timestamp"
SIGNATURE_HEADER = "X-Govinbox-Signature"


class DeliveryFailed(Exception):
    """The receiver did not accept the notification (not 2xx, or unreachable)."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def post(
    client: httpx.AsyncClient, url: str, *, secret: str, payload: dict[str, Any], now: datetime
) -> None:
    """POST the signed notification; raises DeliveryFailed unless the receiver answers 2xx."""
    body = encode(payload)
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise DeliveryFailed(f"HTTP {response.status_code}")
