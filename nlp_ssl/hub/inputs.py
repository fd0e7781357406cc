"""Hub ids as inputs: `model`, `tokenizer` and `model.init_from` may name a local directory or a Hugging Face Hub
model (`bert-base-uncased`), which `local_path` downloads once into the Hub cache, with a clear and immediate
error offline or when the Hub cannot be reached.

The lowest layer of `nlp_ssl.hub`: only the standard library and `nlp_ssl.errors` at module level
(`huggingface_hub` is imported inside `local_path`), so the components that build models and tokenizers import
it without pulling in cards or uploads.

Example:
    >>> looks_like_hub_id("google/electra-small-discriminator"), looks_like_hub_id("runs/quickstart/encoder")
    (True, False)
"""

from __future__ import annotations

import fnmatch
import functools
import re
from pathlib import Path

from nlp_ssl.errors import NlpSslError


class HubError(NlpSslError):
    """The Hub refused or could not be reached (token, network, repository), or a Hub id cannot be resolved;
    the message names the fix."""

    exit_code = 8
    kind = "hub error"


# A repository id (USER/NAME), and a model id as an input (NAME or USER/NAME), as the Hub spells them.
REPO_ID = re.compile(r"[A-Za-z0-9][\w.\-]{0,95}/[A-Za-z0-9][\w.\-]{0,95}")
_HUB_ID = re.compile(r"(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}")


def looks_like_hub_id(name: str) -> bool:
    """`bert-base-uncased` or `google/electra-small-discriminator`: no path syntax, at most one slash."""
    if not name or name.startswith((".", "/", "~")) or "\\" in name or name.endswith("/"):
        return False
    return bool(_HUB_ID.fullmatch(name))


_WEIGHTS = ("*.safetensors", "model.safetensors.index.json")
_SHARED_FILES = ("*.json", "*.txt", "*.model")


@functools.lru_cache(maxsize=None)
def local_path(name: str, key: str = "model") -> str:
    """A local directory for `name`: the directory itself, or the Hub snapshot of a Hub id (config, weights as
    safetensors when the repository has them, tokenizer files), downloaded once into the Hub cache.

    Raises:
        HubError: `name` is neither an existing path nor a reachable Hub model; offline, the message names the
            id and how to use a local copy.

    Example:
        >>> local_path("runs/quickstart/encoder")  # doctest: +SKIP
        'runs/quickstart/encoder'
    """
    if Path(name).expanduser().exists():
        return name
    if not looks_like_hub_id(name):
        raise HubError(f"{key}: {name} does not exist; give a local directory (written by nlp-ssl or save_pretrained) "
                       "or a Hugging Face Hub model id such as bert-base-uncased")
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        OfflineModeIsEnabled, RepositoryNotFoundError)

    local_copy = (f"To work without the Hub, download it where the Hub is reachable "
                  f"(`hf download {name} --local-dir models/{name.split('/')[-1]}`) and set {key}: to that directory.")
    patterns = list(_SHARED_FILES) + list(_WEIGHTS)
    try:
        if not hf_constants.is_offline_mode():
            # one plain request (no retries): an unreachable Hub fails here at once
            files = [s.rfilename for s in HfApi().model_info(name).siblings or []]
            if not any(fnmatch.fnmatch(f, "*.safetensors") for f in files):
                patterns.append("pytorch_model.bin")  # older repositories have no safetensors weights
        return snapshot_download(name, allow_patterns=patterns, etag_timeout=10)
    except (GatedRepoError, RepositoryNotFoundError) as e:
        raise HubError(f"{key}: {name} is not a model on the Hub that this login can read ({type(e).__name__}); "
                       f"check the id, or `hf auth login` for a gated or private model. {local_copy}") from None
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as e:
        why = "offline mode is on (HF_HUB_OFFLINE=1)" if hf_constants.is_offline_mode() else \
            f"the Hub ({hf_constants.ENDPOINT}) cannot be reached"
        raise HubError(f"{key}: {name} is a Hub id, {why}, and it is not in the local Hub cache. {local_copy}") from e
    except HfHubHTTPError as e:
        raise HubError(f"{key}: downloading {name} from {hf_constants.ENDPOINT} failed: {short_reason(e)}. {local_copy}") from None
    except Exception as e:  # connection refused, DNS failure, timeouts (OSError, or httpx's own errors)
        if not unreachable(e):
            raise
        raise HubError(f"{key}: {name} is a Hub id and the Hub ({hf_constants.ENDPOINT}) cannot be reached "
                       f"({type(e).__name__}). {local_copy}") from None


def unreachable(e: BaseException) -> bool:
    """A failure to reach the Hub at all: an OSError, or huggingface_hub's HTTP client's transport errors
    (httpx / httpx2 connection refused, DNS failure, timeouts, which are not OSErrors)."""
    return isinstance(e, OSError) or type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")


def short_reason(e: BaseException) -> str:
    """The first line of an error's message (at most 300 characters), or its class name."""
    return str(e).splitlines()[0][:300] if str(e) else type(e).__name__
