"""Choosing the embedding provider `DISPATCH_EMBEDDINGS` asks for: the local model (default),
an OpenAI-compatible endpoint, or none."""

from __future__ import annotations

from app.config import ConfigError, Settings
from app.runtime import EmbeddingProvider
from app.search.embeddings import LocalMiniLM
from app.search.remote_embeddings import OpenAICompatible


def provider_from_settings(settings: Settings) -> EmbeddingProvider | None:
    """The provider `DISPATCH_EMBEDDINGS` asks for, or None when embeddings are off."""
    match settings.dispatch_embeddings:
        case "off":
            return None
        case "local":
            return LocalMiniLM()
        case "openai":
            if not settings.embeddings_url:
                raise ConfigError(
                    "DISPATCH_EMBEDDINGS=openai needs EMBEDDINGS_URL "
                    "(e.g. https://api.openai.com/v1) and usually EMBEDDINGS_API_KEY"
                )
            return OpenAICompatible(
                settings.embeddings_url, settings.embeddings_api_key, settings.embeddings_model
            )
    raise ConfigError(f"DISPATCH_EMBEDDINGS: unknown provider {settings.dispatch_embeddings!r}")
