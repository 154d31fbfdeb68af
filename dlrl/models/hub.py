"""Hugging Face hub ids → a local snapshot directory, the way ``from_pretrained`` resolves them.

``GSAI-ML/LLaDA-8B-Instruct`` (optionally at a ``revision``) is looked up in the Hugging Face cache
(``HF_HUB_CACHE`` / ``HF_HOME``) and downloaded into it when missing; ``HF_HUB_OFFLINE=1`` (read at
call time) uses the cache only. Every failure is one :class:`DLRLError` line that names the id and
says how to get it (``hf download ID --local-dir DIR``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dlrl.errors import DLRLError

# A repo id: "name" or "org/name" with hub-legal characters (huggingface_hub's own rule, simplified).
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
# Files a model load needs; big optimizer/training leftovers in a repo are skipped.
MODEL_PATTERNS = ("*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.jinja", "*.py", "*.tiktoken")


def looks_like_repo_id(text: str) -> bool:
    """True for ``org/name`` (or a bare ``name``) that is not an existing local path."""
    return bool(_REPO_ID.match(text)) and not Path(text).expanduser().exists() and ".." not in text


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download_hint(repo_id: str) -> str:
    return f"download it with `hf download {repo_id} --local-dir DIR` and pass DIR"


def snapshot(repo_id: str, *, revision: str | None = None, what: str = "model") -> Path:
    """The local snapshot directory of hub repo ``repo_id`` at ``revision`` (default branch).

    Raises one-line :class:`DLRLError`s: unknown repo, gated repo without a token, unknown
    revision, not cached while offline, network failure."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f" at revision {revision!r}" if revision else ""
    cache_dir = os.environ.get("HF_HUB_CACHE") or None  # read now, not at huggingface_hub import
    try:
        path = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=list(MODEL_PATTERNS),
            local_files_only=hub_offline(),
        )
    except GatedRepoError:
        raise DLRLError(
            f"{what} {repo_id!r} is gated: accept its licence on https://huggingface.co/{repo_id} and log in "
            "(`hf auth login` or HF_TOKEN), or " + download_hint(repo_id)
        ) from None
    except RevisionNotFoundError:
        raise DLRLError(f"{what} {repo_id!r} has no revision {revision!r} on the Hugging Face Hub") from None
    except RepositoryNotFoundError:
        raise DLRLError(
            f"{what} {repo_id!r} does not exist on the Hugging Face Hub (or is private: log in with "
            "`hf auth login`) and is not a local directory"
        ) from None
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE=1 is set" if hub_offline() else "the hub could not be reached"
        raise DLRLError(
            f"{what} {repo_id!r}{at} is not a local directory, not in the Hugging Face cache, and {why}; "
            + download_hint(repo_id)
        ) from None
    except HFValidationError as err:
        raise DLRLError(f"{what} {repo_id!r} is not a local directory nor a valid hub id: {err}") from None
    except OSError as err:  # connection errors, disk full, …
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DLRLError(
            f"{what} {repo_id!r}{at} could not be downloaded ({first}); " + download_hint(repo_id)
        ) from None
    return Path(path)
