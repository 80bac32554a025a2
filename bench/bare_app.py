"""Phase (b) of bench/intake.py: the webhook's route answered without the database.

It prices uvicorn, FastAPI and the benchmark's own client on this machine, so (a)/(b) shows
what verifying, decrypting and storing cost on top.
"""

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Ready to serve."""
    return {"status": "ok"}


@app.post("/webhooks/wechat/{account_code}")
async def wechat_message(account_code: str, request: Request) -> PlainTextResponse:
    """Read the body and answer as the real route does when nothing is acknowledged."""
    await request.body()
    return PlainTextResponse("success")
