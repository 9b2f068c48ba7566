"""Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint (`DISPATCH_EMBEDDINGS=openai`
with `EMBEDDINGS_URL`, `EMBEDDINGS_API_KEY`, `EMBEDDINGS_MODEL`)."""

from __future__ import annotations

import httpx
import numpy as np

from app.search.embeddings import DIMENSIONS, EmbeddingError, l2_normalise


class OpenAICompatible:
    """Embeddings from an OpenAI-compatible `POST /v1/embeddings` endpoint."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        model: str,
        dimensions: int = DIMENSIONS,
        *,
        timeout: float = 30.0,
        batch_size: int = 128,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = _embeddings_endpoint(url)
        self.api_key = api_key
        self.model = model
        self.dimensions = dimensions
        self.name = f"openai:{model}"
        self.timeout = timeout
        self.batch_size = batch_size
        self._transport = transport

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        vectors: list[list[float]] = []
        async with httpx.AsyncClient(
            timeout=self.timeout, headers=headers, transport=self._transport
        ) as client:
            for start in range(0, len(texts), self.batch_size):
                vectors.extend(
                    await self._embed_batch(client, texts[start : start + self.batch_size])
                )
        return vectors

    def _request(self, texts: list[str]) -> dict[str, object]:
        body: dict[str, object] = {"model": self.model, "input": texts}
        # OpenAI's text-embedding-3 models are natively 1536/3072 wide and shorten on request;
        # other servers may reject the field, so it is only sent to the models known to take it.
        if self.model.startswith("text-embedding-3"):
            body["dimensions"] = self.dimensions
        return body

    async def _embed_batch(self, client: httpx.AsyncClient, texts: list[str]) -> list[list[float]]:
        try:
            response = await client.post(self.endpoint, json=self._request(texts))
        except httpx.TimeoutException:
            raise EmbeddingError(
                f"embeddings endpoint {self.endpoint} did not answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embeddings endpoint {self.endpoint}: {exc}") from None
        if not response.is_success:
            raise EmbeddingError(
                f"embeddings endpoint {self.endpoint} answered {response.status_code}: "
                f"{_error_message(response)}"
            )
        return self._vectors(response, len(texts))

    def _vectors(self, response: httpx.Response, expected: int) -> list[list[float]]:
        try:
            items = response.json()["data"]
            ordered = sorted(items, key=lambda item: item["index"])
            matrix = np.asarray([item["embedding"] for item in ordered], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(
                f"embeddings endpoint {self.endpoint} sent an unexpected answer ({exc!r}): "
                f"{response.text[:200]}"
            ) from None
        if matrix.ndim != 2 or len(matrix) != expected:
            raise EmbeddingError(
                f"embeddings endpoint {self.endpoint} returned {len(matrix)} vectors "
                f"for {expected} texts"
            )
        if matrix.shape[1] != self.dimensions:
            raise EmbeddingError(
                f"model {self.model} at {self.endpoint} returned {matrix.shape[1]}-dimension "
                f"vectors, but {self.dimensions} dimensions are configured"
            )
        return l2_normalise(matrix).tolist()


def _embeddings_endpoint(url: str) -> str:
    base = url.rstrip("/")
    if base.endswith("/embeddings"):
        return base
    if base.endswith("/v1"):
        return f"{base}/embeddings"
    return f"{base}/v1/embeddings"


def _error_message(response: httpx.Response) -> str:
    """The server's own explanation: OpenAI's `{"error": {"message"}}` and its common variants."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    message = payload
    if isinstance(payload, dict):
        message = payload.get("error") or payload.get("detail") or payload.get("message") or payload
        if isinstance(message, dict):
            message = message.get("message") or message
    return str(message)[:500]
