"""Settings, from environment variables (``ASSISTANT_*``) or a ``.env`` file.

All user state lives under ``ASSISTANT_HOME``: the retrieval index, chat sessions, eval
runs and the LLM response cache. Tests point it at a temporary directory.
"""

from __future__ import annotations

import functools
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "shipped_corpus_path"]

PACKAGE_ROOT = Path(__file__).resolve().parent


def shipped_corpus_path() -> Path:
    """The corpus shipped with the project (``corpus/`` at the repository root, or inside the package)."""
    for candidate in (PACKAGE_ROOT.parent / "corpus", PACKAGE_ROOT / "corpus"):
        if (candidate / "framework.yaml").exists():
            return candidate
    return PACKAGE_ROOT.parent / "corpus"


def shipped_prompts_path() -> Path:
    for candidate in (PACKAGE_ROOT.parent / "prompts", PACKAGE_ROOT / "prompts"):
        if candidate.is_dir():
            return candidate
    return PACKAGE_ROOT.parent / "prompts"


class Settings(BaseSettings):
    """Everything configurable. Each field reads ``ASSISTANT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("transformation-advisor")),
        description="Directory for all user state (index, sessions, eval runs, caches).",
    )
    corpus_path: Path | None = Field(
        default=None, description="A user corpus directory layered over the shipped one."
    )
    model: str | None = Field(
        default=None, description="litellm model string; unset means the offline backend."
    )
    api_base: str | None = Field(default=None, description="Base URL for the model provider.")
    api_key: SecretStr | None = Field(default=None, description="Key for the model provider.")
    model_timeout: float = Field(default=60.0, gt=0, description="Seconds per model call.")
    model_retries: int = Field(default=1, ge=0, le=5, description="Retries after a failed call.")
    max_tokens: int = Field(default=2048, gt=0)
    chroma_url: str | None = Field(
        default=None, description="URL of a Chroma server; unset means embedded under home."
    )
    chroma_timeout: float = Field(default=5.0, gt=0)
    embedding: str = Field(default="onnx-minilm", description="Embedding provider id.")
    embedding_optimise: bool = Field(
        default=True,
        description="Run onnx-minilm as a fused int8 model built once per machine (2.5x faster).",
    )
    model_cache: Path | None = Field(
        default=None, description="Where built models are cached; unset means <home>/models."
    )
    max_plan_bytes: int = Field(default=2_000_000, gt=0, description="Largest plan file accepted.")
    max_plan_chars: int = Field(default=200_000, gt=0, description="Longest plan text accepted.")
    cache: bool = Field(default=True, description="Cache LLM responses on disk.")
    log_level: str = Field(default="WARNING")
    # API
    api_keys: str | None = Field(default=None, description="Comma-separated API keys.")
    api_keys_file: Path | None = Field(default=None, description="File of hashed API keys.")
    max_body_bytes: int = Field(default=2_000_000, gt=0)
    rate_limit_per_minute: int = Field(default=120, gt=0)
    max_concurrent_llm: int = Field(default=4, gt=0)
    cors_origins: str | None = Field(default=None, description="Comma-separated CORS origins.")

    @property
    def corpus_paths(self) -> list[Path]:
        """The shipped corpus, then the user's layered over it."""
        paths = [shipped_corpus_path()]
        if self.corpus_path is not None:
            paths.append(Path(self.corpus_path))
        return paths

    @property
    def model_cache_dir(self) -> Path:
        return Path(self.model_cache) if self.model_cache is not None else Path(self.home) / "models"

    def state_dir(self, name: str) -> Path:
        path = Path(self.home) / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@functools.cache
def get_settings() -> Settings:
    return Settings()
