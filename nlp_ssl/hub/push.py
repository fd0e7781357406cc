"""Sharing a model directory on the Hugging Face Hub: `push` (`nlp-ssl push`) and `share` (the end of a run).

`push` is `create_repo` + one commit (`create_commit`, what `upload_folder` makes) of a model directory's own files
(no checkpoints, optimizer states or logs unless asked), the card sent from memory so that the directory itself is
never modified, with the token from the usual login or `HF_TOKEN`, never printed or written. `HubConfig` is the
`hub:` section of the pretrain and finetune configs.

Only the standard library and nlp_ssl's light modules are imported at module level (`HubConfig` is part of configs
that must load at once); `huggingface_hub` is imported inside the functions.

Example:
    >>> push("runs/quickstart/sst2", "me/sst2-tiny", dry_run=True)["files"][:2]  # doctest: +SKIP
    ['README.md', 'config.json']
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_ssl.hub.cards import build_model_card, write_model_card
from nlp_ssl.hub.inputs import REPO_ID, HubError, short_reason, unreachable
from nlp_ssl.layout import CARD_FILE, METRICS_FILE, cell_name

__all__ = ["HubConfig", "LOG_FILES", "MODEL_FILES", "card_for_repo", "check_model_dir", "files_to_upload", "push",
           "push_if_asked", "share"]

# What a model directory shares: weights, configs, tokenizer files, the card, and the run's small records.
MODEL_FILES = ("README.md", "config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json",
               "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
               "merges.txt", "*.model", "added_tokens.json", "metrics.json", "config.yaml", "run_info.json",
               "tokenizer_summary.json")
# Shared only when asked (`--include-logs`): training curves and predictions.
LOG_FILES = ("log_history.json", "tensorboard/**", "plots/*.png", "predictions*.json", "predictions*.jsonl",
             "na_scores*.json")
# Never shared: training state, whatever the patterns say.
NEVER = ("checkpoints/**", "**/optimizer.pt", "**/scheduler.pt", "**/rng_state*.pth", "**/training_args.bin",
         ".*", "**/.*")


@dataclass
class HubConfig:
    """Push the finished model to the Hugging Face Hub (from the main process only).

    Attributes:
        push: upload when the run finishes (model, tokenizer and card; see `nlp-ssl push` to do it later).
        repo_id: `USER/NAME` or `ORG/NAME` of the model repository (created when missing).
        private: create the repository private.
        revision: the branch to push to (null: the default branch).
        include_logs: also upload log_history.json, TensorBoard logs, plots and predictions.
    """

    push: bool = False
    repo_id: str | None = None
    private: bool = False
    revision: str | None = None
    include_logs: bool = False

    def validate(self) -> list[str]:
        problems = []
        if self.push and not self.repo_id:
            problems.append("repo_id: hub.push needs hub.repo_id (USER/NAME)")
        if self.repo_id and not REPO_ID.fullmatch(self.repo_id):
            problems.append(f"repo_id: {self.repo_id!r} is not a Hub repository id; use USER/NAME (letters, digits, "
                            "'-', '_', '.')")
        return problems


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or (p.endswith("/**") and rel.startswith(p[:-2])) for p in patterns)


def files_to_upload(model_dir: str | Path, include_logs: bool = False) -> list[str]:
    """The model directory's own files (relative POSIX paths, sorted) that `push` uploads."""
    root = Path(model_dir)
    wanted = MODEL_FILES + (LOG_FILES if include_logs else ())
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and _matches(rel, wanted) and not _matches(rel, NEVER):
            out.append(rel)
    return out


def check_model_dir(model_dir: str | Path) -> Path:
    """A directory `push` can share: a model (config.json) or a tokenizer (tokenizer.json)."""
    root = Path(model_dir)
    if not root.is_dir():
        raise HubError(f"{root} does not exist; give a model directory written by nlp-ssl (e.g. runs/quickstart/sst2)")
    if (root / "config.json").is_file() or (root / "tokenizer.json").is_file():
        return root
    summary = _read_json(root / METRICS_FILE)
    if "runs" in summary:
        runs = sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())
        best = summary.get("selection", {}).get("best_learning_rate")
        seed = (summary.get("seeds") or [None])[0]
        hint = f"{root}/{cell_name(best, seed)}" if best is not None else f"{root}/{runs[0]}" if runs else ""
        raise HubError(f"{root} holds a multi-seed summary, not one model; push one of its runs ({', '.join(runs)}), "
                       f"e.g. nlp-ssl push {hint} --repo-id USER/NAME")
    raise HubError(f"{root} holds no config.json or tokenizer.json: not a model directory")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _git_blob_sha1(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256(path: Path, data: bytes | None) -> str:
    import hashlib

    from nlp_ssl.runinfo import file_digest

    return hashlib.sha256(data).hexdigest() if data is not None else file_digest(path)


def _remote_matches(api, repo_id: str, revision: str | None, root: Path, files: list[str],
                    in_memory: dict[str, bytes]) -> set[str] | None:
    """Which of `files` the repository already holds with the same content (None: the Hub cannot tell us);
    `in_memory` holds the files sent from memory rather than from `root` (the card)."""
    try:
        remote = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True, revision=revision)
                  if hasattr(f, "blob_id")}
    except Exception:  # the Hub failing is why we are here; a second failure only means "unknown"
        return None
    same = set()
    for rel in files:
        r = remote.get(rel)
        if r is None:
            continue
        data = in_memory.get(rel)
        if r.lfs is not None and r.lfs.sha256 == _sha256(root / rel, data):
            same.add(rel)
        elif r.lfs is None and r.blob_id == _git_blob_sha1(data if data is not None else (root / rel).read_bytes()):
            same.add(rel)
    return same


def card_for_repo(root: Path, repo_id: str) -> str:
    """The card a push uploads: the directory's README.md (or one built now when it has none), its loading
    examples naming `repo_id`. Built in memory: a finished run directory is never modified by a push (its
    completeness marker records every file's size)."""
    path = root / CARD_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else str(
        build_model_card(root, "not recorded", model_name=repo_id.split("/")[-1]))
    return text.replace('"REPO_ID"', f'"{repo_id}"')


def _token() -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise HubError("no Hugging Face token: log in with `hf auth login` (a token with write access, from "
                       "https://huggingface.co/settings/tokens) or set the HF_TOKEN environment variable")
    return token


def _http_reason(e: BaseException) -> str:
    """A failure described without anything that could hold the token (status code and the server's words)."""
    response = getattr(e, "response", None)
    status = getattr(response, "status_code", None)
    server = getattr(e, "server_message", None) or ""
    if status is not None:
        return f"HTTP {status}" + (f": {server.strip()[:200]}" if server else "")
    return type(e).__name__


def push(model_dir: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         commit_message: str | None = None, include_logs: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Upload a model directory's own files and its card to the Hub repository `repo_id` (created if missing).

    The token comes from `hf auth login` or `HF_TOKEN`; it is sent to the Hub only, never printed or written.
    An upload that fails names the files that did not reach the repository.

    Returns:
        {"repo_id", "files", "url", "commit"} (`url`/`commit` are None for a dry run).

    Raises:
        HubError: no token, a rejected token, an unreachable Hub, or a failed upload (what was not uploaded).

    Example:
        >>> push("runs/quickstart/sst2", "me/sst2-tiny", dry_run=True)  # doctest: +SKIP
    """
    root = check_model_dir(model_dir)
    if not REPO_ID.fullmatch(repo_id):
        raise HubError(f"--repo-id {repo_id!r} is not a Hub repository id; use USER/NAME")
    card = card_for_repo(root, repo_id)
    files = sorted(set(files_to_upload(root, include_logs)) | {CARD_FILE})
    if dry_run:
        return {"repo_id": repo_id, "files": files, "url": None, "commit": None, "card": card, "dry_run": True}

    token = _token()
    from huggingface_hub import HfApi
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    endpoint = hf_constants.ENDPOINT
    try:
        api.whoami()
    except HfHubHTTPError as e:
        if getattr(e.response, "status_code", None) == 401:
            raise HubError(f"the Hugging Face token was rejected by {endpoint} (HTTP 401): log in again with "
                           "`hf auth login` or set HF_TOKEN to a valid token with write access") from None
        raise HubError(f"checking the token with {endpoint} failed ({_http_reason(e)})") from None
    except Exception as e:  # connection refused, DNS failure, timeouts
        if not unreachable(e):
            raise
        raise HubError(f"the Hub ({endpoint}) cannot be reached ({type(e).__name__}); check the network or "
                       "HF_ENDPOINT") from None

    # The card on the Hub names the repository it lives in; it is sent from memory (the directory is left as it is).
    from huggingface_hub import CommitOperationAdd

    in_memory = {CARD_FILE: card.encode("utf-8")}
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=in_memory.get(rel, str(root / rel)))
                  for rel in files]

    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
    except HfHubHTTPError as e:
        raise HubError(f"creating {repo_id} on {endpoint} failed ({_http_reason(e)}); nothing was uploaded: "
                       f"{', '.join(files)}") from None
    except Exception as e:  # connection refused, DNS failure, timeouts
        if not unreachable(e):
            raise
        raise HubError(f"the Hub ({endpoint}) cannot be reached ({type(e).__name__}); nothing was uploaded") from None
    try:
        info = api.create_commit(repo_id=repo_id, operations=operations,
                                 commit_message=commit_message or f"Upload {root.name} with nlp-ssl",
                                 revision=revision)
    except Exception as e:  # noqa: BLE001 - whatever broke, say what is and is not on the Hub
        same = _remote_matches(api, repo_id, revision, root, files, in_memory)
        missing = [f for f in files if same is None or f not in same]
        known = "" if same is not None else " (the Hub could not be asked what it holds, so none is assumed)"
        reason = _http_reason(e) if isinstance(e, HfHubHTTPError) else f"{type(e).__name__}: {short_reason(e)}"
        raise HubError(f"uploading {root} to {repo_id} failed ({reason}); not uploaded{known}: {', '.join(missing)}. "
                       f"Run the same push again: files already there are skipped") from None
    return {"repo_id": repo_id, "files": files, "url": str(url), "commit": getattr(info, "oid", None),
            "dry_run": False}


def share(model_dir: str | Path, cfg: HubConfig) -> dict[str, Any] | None:
    """End of a run (main process): write the model card, and push when `hub.push` is set."""
    from nlp_ssl.atomic import is_complete, refresh_marker

    complete = is_complete(model_dir)
    write_model_card(model_dir, repo_id=cfg.repo_id)
    if complete:  # the card changed size: a finished run stays finished
        refresh_marker(model_dir)
    return push_if_asked(model_dir, cfg)


def push_if_asked(model_dir: str | Path, cfg: HubConfig) -> dict[str, Any] | None:
    """Push a finished, saved run directory when `hub.push` is set (main process, after the run is marked
    finished: a failed upload leaves a finished run, to be pushed later with `nlp-ssl push`)."""
    if not cfg.push:
        return None
    try:
        result = push(model_dir, cfg.repo_id, private=cfg.private, revision=cfg.revision,
                      include_logs=cfg.include_logs)
    except HubError as e:  # the run itself is finished and saved; only the upload is left to do
        raise HubError(f"{e}\nThe model is saved in {model_dir}; upload it later with: nlp-ssl push {model_dir} "
                       f"--repo-id {cfg.repo_id}" + (" --private" if cfg.private else "")
                       + (f" --revision {cfg.revision}" if cfg.revision else "")) from None
    print(f"pushed {len(result['files'])} file(s) from {model_dir} to {result['url']}")
    return result
