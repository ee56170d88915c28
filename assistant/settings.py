"""Settings, from environment variables (``ASSISTANT_*``) or a ``.env`` file.

All user state lives under ``ASSISTANT_HOME``: the retrieval index, chat sessions, eval
runs and the LLM response cache. Tests point it at a temporary directory.
"""

from __future__ import annotations

import errno
import functools
import tempfile
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

__all__ = ["Settings", "get_settings", "home_error", "shipped_corpus_path"]

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
    model_timeout: float = Field(
        default=60.0, gt=0,
        description="Deadline in seconds for one model answer (a critique's calls, or a chat answer), "
                    "retries included; on expiry the offline answer is used.")
    model_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to connect to the model.")
    model_first_byte_timeout: float | None = Field(
        default=None, gt=0,
        description="Seconds until the model's first byte, and the longest pause after it; unset: the deadline.")
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
    max_chat_messages: int = Field(default=100, gt=0, description="Most messages in one chat request (400).")
    max_chat_chars: int = Field(default=250_000, gt=0,
                                description="Most characters in one chat request's messages together (413).")
    auth_failures_per_minute: int = Field(
        default=10, gt=0, description="Failed API-key attempts a minute per client address before 429.")
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
        """Where built models are kept: ``model_cache``, else ``home/models``, else (a home that cannot
        hold it) a folder under the system's temporary directory, so a broken home costs speed, not a run."""
        if self.model_cache is not None:
            return Path(self.model_cache)
        path = Path(self.home) / "models"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return Path(tempfile.gettempdir()) / "transformation-advisor-models"
        return path

    def state_dir(self, name: str) -> Path:
        """``home/name``, created if need be; a home that cannot hold it is a ConfigError (one line, exit 2)."""
        path = Path(self.home) / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise home_error(Path(self.home), exc) from exc
        return path


def home_error(home: Path, exc: OSError) -> ConfigError:
    """A state directory problem as one clear line: what is wrong with ASSISTANT_HOME, and the fix."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, NotADirectoryError | FileExistsError):
        reason = "it, or a folder on its path, is a file, not a directory"
    elif isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"it cannot be written ({exc.strerror or exc})"
    return ConfigError(f"ASSISTANT_HOME {home} cannot hold the advisor's state: {reason}.",
                       hint="Set ASSISTANT_HOME (or --home) to a writable directory.")


@functools.cache
def get_settings() -> Settings:
    return Settings()
