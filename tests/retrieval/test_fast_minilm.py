"""The optimised MiniLM: built once, checked against the shipped model, never silently wrong."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from assistant.retrieval import fast_minilm
from assistant.retrieval.embeddings import OnnxMiniLMEmbedder, get_embedder, minilm_files

TEXTS = [
    "Appoint boundary-spanning care coordinators between community nursing and social work.",
    "Establish a joint programme board and a single PMO with monthly highlight reports.",
    "Daily huddles for the neighbourhood team.",
    "Budget",
]


@pytest.fixture(scope="module")
def shipped() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder(optimise=False)


def test_the_default_embedder_runs_the_optimised_model() -> None:
    embedder = get_embedder("onnx-minilm")
    assert embedder.model_name == f"{OnnxMiniLMEmbedder.OPTIMISED_NAME}-v3"
    cached = list(Path(os.environ["ASSISTANT_MODEL_CACHE"]).glob(f"*{fast_minilm.VARIANT}.onnx"))
    assert len(cached) == 1


def test_optimised_vectors_agree_with_the_shipped_model(shipped: OnnxMiniLMEmbedder) -> None:
    fast = get_embedder("onnx-minilm")
    cosine = (fast.embed(TEXTS) * shipped.embed(TEXTS)).sum(axis=1)
    assert cosine.min() >= fast_minilm.MIN_COSINE, cosine
    assert shipped.model_name == OnnxMiniLMEmbedder.SHIPPED_NAME


def test_the_fused_graph_is_exact_before_quantising(tmp_path: Path) -> None:
    """The attention and GELU rewrites change nothing: the int8 step is the only approximation."""
    import onnx
    import onnxruntime as ort

    source, tokenizer = minilm_files()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "folded.onnx")
    ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
    model = onnx.load(str(tmp_path / "folded.onnx"))
    fast_minilm._fuse_attention(model)
    fast_minilm._fuse_bias_gelu(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Attention") == ops.count("BiasGelu") == 6
    assert not {"Softmax", "IsNaN", "Transpose", "Erf"} & set(ops)
    onnx.save(model, str(tmp_path / "fused.onnx"))
    assert fast_minilm._agreement(source, tmp_path / "fused.onnx", tokenizer) > 0.99999


def test_the_build_is_cached_and_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source, tokenizer = minilm_files()
    with caplog.at_level(logging.WARNING):
        first = fast_minilm.optimise(source, tokenizer, tmp_path)
    assert "Preparing the embedding model for this machine (once" in caplog.text  # the wait is said
    caplog.clear()
    stamp = first.stat().st_mtime_ns
    with caplog.at_level(logging.WARNING):
        assert fast_minilm.optimise(source, tokenizer, tmp_path) == first
    assert not caplog.text
    assert first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no build leftovers


def test_a_model_that_drifts_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_minilm, "MIN_COSINE", 1.01)
    source, tokenizer = minilm_files()
    with pytest.raises(fast_minilm.OptimiseError, match="agrees with the shipped one only"):
        fast_minilm.optimise(source, tokenizer, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_build_falls_back_to_the_shipped_model_and_says_so(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    shipped: OnnxMiniLMEmbedder,
) -> None:
    def broken(source: Path, work: Path) -> None:
        raise ModuleNotFoundError("No module named 'onnx'")

    monkeypatch.setattr(fast_minilm, "_build", broken)
    embedder = OnnxMiniLMEmbedder(cache_dir=tmp_path / "models")
    with caplog.at_level(logging.WARNING):
        assert embedder.model_name == OnnxMiniLMEmbedder.SHIPPED_NAME
    assert "could not optimise it: ModuleNotFoundError" in caplog.text
    np.testing.assert_allclose(embedder.embed(TEXTS), shipped.embed(TEXTS), atol=1e-6)


def test_optimising_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from assistant.settings import get_settings

    monkeypatch.setenv("ASSISTANT_EMBEDDING_OPTIMISE", "false")
    get_settings.cache_clear()
    embedder = OnnxMiniLMEmbedder(cache_dir=tmp_path)
    assert embedder.model_name == OnnxMiniLMEmbedder.SHIPPED_NAME
    assert list(tmp_path.iterdir()) == []
