"""The floor for `webhook_ingest.py`: the same framework and server (Litestar on uvicorn) with an
endpoint that only verifies the HMAC and answers. Whatever Dispatch adds on top (journal,
queue, transaction) shows as the ratio against this."""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, Request, Response, post

from app.intake.signatures import verify_github

SECRET = sys.argv[2] if len(sys.argv) > 2 else "secret"


@post("/webhooks/github", status_code=202, request_max_body_size=25 * 1024 * 1024)
async def floor(request: Request) -> Response[dict[str, object]]:
    body = await request.body()
    if not verify_github(SECRET, body, request.headers.get("x-hub-signature-256")):
        return Response({"error": "bad signature"}, status_code=401)
    return Response(
        {"delivery": request.headers.get("x-github-delivery"), "duplicate": False}, status_code=202
    )


if __name__ == "__main__":
    uvicorn.run(
        Litestar([floor], logging_config=None),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
    )
