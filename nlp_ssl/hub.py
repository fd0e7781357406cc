"""Sharing models: model cards, upload to the Hugging Face Hub, and Hub ids as inputs.

- `build_model_card` / `write_model_card`: a `README.md` for every directory a run saves (tokenizer, encoder,
  fine-tuned model), made with `huggingface_hub`'s `ModelCard`/`ModelCardData`/`EvalResult` from the files the
  run left there (config.yaml, run_info.json, metrics.json, config.json), so a card can be rebuilt at any time
  and needs nothing from the recipe that wrote the directory. Evaluation results go into the Hub's `model-index`.
- `push`: `create_repo` + one commit (`create_commit`, what `upload_folder` makes) of a model directory's own
  files (no checkpoints, optimizer states or logs unless asked), the card sent from memory so that the
  directory itself is never modified, with the token from the usual login or `HF_TOKEN`, never printed or written.
- `local_path`: a local directory, or a Hub id (`bert-base-uncased`) downloaded once into the Hub cache, with
  a clear and immediate error offline or when the Hub cannot be reached.

Only the standard library is imported at module level (`HubConfig` is part of configs that must load at once);
`huggingface_hub` is imported inside the functions.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nlp_ssl.errors import NlpSslError

CARD_FILE = "README.md"

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


class HubError(NlpSslError):
    """The Hub refused or could not be reached (token, network, repository), or a Hub id cannot be resolved;
    the message names the fix."""

    exit_code = 8
    kind = "hub error"


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


REPO_ID = re.compile(r"[A-Za-z0-9][\w.\-]{0,95}/[A-Za-z0-9][\w.\-]{0,95}")
_HUB_ID = re.compile(r"(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}")


def comparable(cfg_dict: dict) -> dict:
    """A config dict without its `hub` section (where a model is shared never changes what is trained)."""
    return {k: v for k, v in cfg_dict.items() if k != "hub"}


# ----------------------------------------------------------------------------------------------------------
# Hub ids as inputs


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
        raise HubError(f"{key}: downloading {name} from {hf_constants.ENDPOINT} failed: {_short(e)}. {local_copy}") from None
    except Exception as e:  # connection refused, DNS failure, timeouts (OSError, or httpx's own errors)
        if not _unreachable(e):
            raise
        raise HubError(f"{key}: {name} is a Hub id and the Hub ({hf_constants.ENDPOINT}) cannot be reached "
                       f"({type(e).__name__}). {local_copy}") from None


def _unreachable(e: BaseException) -> bool:
    """A failure to reach the Hub at all: an OSError, or huggingface_hub's HTTP client's transport errors
    (httpx / httpx2 connection refused, DNS failure, timeouts, which are not OSErrors)."""
    return isinstance(e, OSError) or type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:300] if str(e) else type(e).__name__


# ----------------------------------------------------------------------------------------------------------
# Model cards


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _read_config(path: Path) -> dict:
    from nlp_ssl.config import read_yaml

    try:
        return read_yaml(path) if path.is_file() else {}
    except NlpSslError:
        return {}


def describe_hardware() -> str:
    """The accelerator (or CPU) this process trains on; torch is asked only when a recipe already imported it."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f"{n} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores)"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _minutes(seconds: float | None) -> str:
    if not seconds:
        return "unknown"
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.0f} seconds"


def _paths(src: dict) -> list[str]:
    path = src.get("path")
    return [str(p) for p in (path if isinstance(path, list) else [path] if path else [])]


def _is_hub_copy(src: dict) -> bool:
    """Whether a source's data is its `hub_name` data set: read from the Hub (no local path), or local files kept
    under a directory named for it (`glue/sst2/dev.tsv` for nyu-mll/glue sst2, `qa/squad/...` for
    rajpurkar/squad). With local files, `hub_name` is only a fallback, used when they are missing: the SQuAD
    preset trains on SQuADShifts files with rajpurkar/squad as fallback, and a card must not name SQuAD as its
    training data."""
    hub = src.get("hub_name")
    if not hub:
        return False
    paths = _paths(src)
    if not paths:
        return True
    names = {hub.split("/")[-1].lower()} | ({str(src["hub_config"]).lower()} if src.get("hub_config") else set())
    return all(names & {part.lower() for part in PurePosixPath(p).parts[:-1]} for p in paths)


def _source_dataset(src: dict | None) -> tuple[str | None, str | None, str | None]:
    """(Hub dataset id, config, split) of the data a source holds; (None, None, None) when its local files are
    not a copy of its `hub_name` (see `_is_hub_copy`)."""
    if not isinstance(src, dict) or not _is_hub_copy(src):
        return None, None, None
    return src.get("hub_name"), src.get("hub_config"), src.get("split")


def _source_text(src: dict | None) -> str:
    if not isinstance(src, dict):
        return "unknown"
    paths = _paths(src)
    hub = src.get("hub_name")
    local = ", ".join(f"`{p}`" for p in paths)
    if hub and not _is_hub_copy(src):
        return local + " (local files)"
    if hub:
        hub_txt = f"[{hub}](https://huggingface.co/datasets/{hub})" + (f" ({src['hub_config']})" if src.get("hub_config") else "")
        return (f"{local} (the config names {hub_txt}, split {src.get('split')}, as its Hub counterpart)" if local
                else f"{hub_txt}, split {src.get('split')}")
    return local or "unknown"


def _base_model(name: str | None) -> str | None:
    """The Hub id a model was built from: a Hub id given directly, or the repo a local encoder was pushed to."""
    if not name:
        return None
    p = Path(name)
    if not p.exists():
        return name if looks_like_hub_id(name) else None
    hub = _read_config(p / "config.yaml").get("hub") or {}
    return hub.get("repo_id") if isinstance(hub, dict) else None


@dataclass
class _Card:
    kind: str  # tokenizer | encoder | classifier | qa
    title: str
    summary: str
    sections: list[tuple[str, str]]
    data: dict[str, Any]


def _eval_results(task_type: str, evals: dict, sources: dict, dataset_fallback: str, metric_names: list[str],
                  seeds_summary: dict | None, max_eval: int | None = None) -> list:
    from huggingface_hub import EvalResult

    out = []
    for split, metrics in evals.items():
        src = sources.get(split) or {}
        hub, config, hub_split = _source_dataset(src)
        dataset_type = hub or dataset_fallback
        limit = max_eval or src.get("max_examples")
        files = ", ".join(PurePosixPath(p).name for p in _paths(src)) if isinstance(src, dict) else ""
        dataset_name = (f"{dataset_type}" + (f" ({config})" if config else "") + f", {split} split"
                        + (f" ({'local copy ' if hub else 'local files '}{files})" if files else "")
                        + (f" (first {limit} examples)" if limit else ""))
        for m in metric_names:
            v = metrics.get(m)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
                continue
            common = dict(task_type=task_type, dataset_type=dataset_type, dataset_name=dataset_name,
                          dataset_config=config, dataset_split=hub_split or split)
            out.append(EvalResult(metric_type=m, metric_value=float(v), **common))
            s = (seeds_summary or {}).get(split, {}).get(m)
            if s and s.get("n", 1) > 1:
                seeds = f"{s['n']} seeds"
                out.append(EvalResult(metric_type=f"{m}_mean", metric_name=f"{m}, mean over {seeds}",
                                      metric_value=float(s["mean"]), **common))
                out.append(EvalResult(metric_type=f"{m}_std", metric_name=f"{m}, standard deviation over {seeds}",
                                      metric_value=float(s["std"]), **common))
    return out


def _seeds_summary(model_dir: Path, metrics: dict) -> tuple[dict | None, dict | None]:
    """The summary over seeds when `model_dir` is one run of a multi-seed fine-tuning at the chosen rate."""
    parent = _read_json(model_dir.parent / "metrics.json")
    if "summary" not in parent or "selection" not in parent:
        return None, None
    if metrics.get("learning_rate") != parent["selection"].get("best_learning_rate"):
        return None, parent
    return parent["summary"], parent


def _load_snippet(auto: str, pipeline: str | None, example: str | None) -> str:
    lines = ["```python", f"from transformers import AutoTokenizer, {auto}", "",
             'repo = "REPO_ID"  # or the local directory', "tokenizer = AutoTokenizer.from_pretrained(repo)",
             f"model = {auto}.from_pretrained(repo)"]
    if pipeline:
        lines += ["", "from transformers import pipeline", f'pipe = pipeline("{pipeline}", model=repo)']
        if example:
            lines.append(f"print(pipe({example}))")
    lines.append("```")
    return "\n".join(lines)


def _config_section(cfg: dict) -> str:
    import yaml

    return "```yaml\n" + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True).strip() + "\n```"


def _versions(info: dict) -> str:
    v = info.get("versions") or {}
    git = info.get("git") or {}
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    rev = f"; nlp-ssl commit {git['commit'][:12]}" + (" (with uncommitted changes)" if git.get("dirty") else "") \
        if git.get("commit") else ""
    return libs + rev


def run_name(run_dir: Path) -> str:
    """The directory's final name, also while a run is still writing it under `.NAME.tmp-PID` (runinfo.atomic_dir)."""
    m = re.fullmatch(r"\.(.+)\.tmp-\d+", run_dir.name)
    return m.group(1) if m else run_dir.name


def _describe(model_dir: Path, hardware: str | None) -> _Card:
    info = _read_json(model_dir / "run_info.json")
    cfg = _read_config(model_dir / "config.yaml")
    metrics = _read_json(model_dir / "metrics.json")
    hf = _read_json(model_dir / "config.json")
    command = info.get("command")
    hardware = hardware or "not recorded"
    if command == "train-tokenizer" or (not hf and (model_dir / "tokenizer.json").exists()):
        return _tokenizer_card(model_dir, cfg, info)
    if not hf:
        raise NlpSslError(f"{model_dir} holds no config.json: not a model directory written by nlp-ssl or "
                          "save_pretrained")
    if command == "pretrain":
        return _encoder_card(model_dir, cfg, info, metrics, hf, hardware)
    if command == "finetune" or "eval" in metrics:
        return _finetuned_card(model_dir, cfg, info, metrics, hf, hardware)
    arch = hf.get("model_type", "model")
    return _Card("model", f"{arch} model", f"A {arch} model.", [], {"library_name": "transformers"})


def _tokenizer_card(model_dir: Path, cfg: dict, info: dict) -> _Card:
    s = _read_json(model_dir / "tokenizer_summary.json")
    t = cfg.get("tokenizer") or {}
    kind = t.get("model", "subword")
    vocab = s.get("vocab_size") or t.get("vocab_size")
    summary = (f"A {kind} tokenizer with a vocabulary of {vocab:,} entries, trained with nlp-ssl on "
               f"{s.get('training_documents', 'unknown'):,} documents." if isinstance(vocab, int) and
               isinstance(s.get("training_documents"), int) else f"A {kind} tokenizer trained with nlp-ssl.")
    rows = [("training data", _source_text(cfg.get("data"))), ("model", kind), ("vocabulary", _fmt(vocab)),
            ("lower-cased", _fmt(t.get("lowercase"))), ("template", _fmt(t.get("template")))]
    if s:
        rows += [("held-out documents", _fmt(s.get("held_out_documents"))),
                 ("tokens per word (held out)", _fmt(s.get("tokens_per_word"))),
                 ("unknown-token rate (held out)", _fmt(s.get("unknown_rate")))]
    hub, _, _ = _source_dataset(cfg.get("data"))
    sections = [("Training", _table(rows)),
                ("Intended use and limits",
                 "Tokenizes English text for the encoders pretrained with this project. Its vocabulary reflects "
                 "its training text only; other domains and languages split into more, rarer pieces."),
                ("How to load", "```python\nfrom transformers import AutoTokenizer\n\n"
                                "tokenizer = AutoTokenizer.from_pretrained(\"REPO_ID\")  # or the local directory\n```"),
                ("Resolved config", _config_section(cfg) if cfg else "not recorded"),
                ("Software", _versions(info))]
    data = {"library_name": "transformers", "language": "en", "tags": ["nlp-ssl", "tokenizer", kind],
            "datasets": [hub] if hub else None}
    return _Card("tokenizer", f"{kind} tokenizer ({_fmt(vocab)} entries)", summary, sections, data)


def _batch_text(train: dict, info: dict, metrics: dict) -> str:
    per = train.get("per_device_train_batch_size", train.get("per_device_batch_size"))  # the name before 0.2
    world = info.get("world_size", 1)
    accum = train.get("gradient_accumulation_steps") or 1
    if not isinstance(per, int):
        return "unknown"
    batch = per * world * accum
    steps, tokens = metrics.get("steps"), metrics.get("tokens_seen")
    block = f" of {tokens // (steps * batch)} tokens" if steps and tokens else ""
    return f"{batch} sequences{block} ({per} per device x {world} process(es) x {accum} accumulation)"


def _table(rows: list[tuple[str, str]], head: tuple[str, str] = ("", "")) -> str:
    out = [f"| {head[0]} | {head[1]} |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out)


def _encoder_card(model_dir: Path, cfg: dict, info: dict, metrics: dict, hf: dict, hardware: str) -> _Card:
    arch = hf.get("model_type", "encoder")
    params = info.get("parameters")
    seconds = metrics.get("train_runtime_s")
    tokens = metrics.get("tokens_seen")
    objective = (cfg.get("objective") or {}).get("task", "mlm")
    train = cfg.get("train") or {}
    prep = _read_config(Path(str(cfg.get("data", ""))) / "config.yaml")
    data_src = prep.get("data")
    size = f"{params / 1e6:.1f}M-parameter" if params else "small"
    layers, width = hf.get("num_hidden_layers"), hf.get("hidden_size")
    minutes = (f"{seconds / 60:.0f}-minute" if seconds >= 90 else f"{seconds:.0f}-second") if seconds else "briefly trained"
    init_from = (cfg.get("model") or {}).get("init_from")
    base = _base_model(init_from)
    what = {"mlm": "masked language modelling", "clm": "next-token language modelling"}.get(objective, objective)
    summary = (f"A {minutes} {size} {arch} encoder ({layers} layers, width {width}) pretrained with {what} by "
               f"nlp-ssl" + (f", continuing from {base or init_from}" if init_from else "") + ".")
    budget = (f"{metrics.get('steps')} optimizer steps" + (f" (limit {train.get('max_time_minutes')} minutes)"
                                                            if train.get("max_time_minutes") else ""))
    rows = [("objective", what + (f" ({(cfg.get('objective') or {}).get('masking', {}).get('strategy')} masking, "
                                  f"rate {(cfg.get('objective') or {}).get('masking', {}).get('mask_rate')})"
                                  if objective == "mlm" else "")),
            ("training data", _source_text(data_src) if data_src else f"`{cfg.get('data')}`"),
            ("parameters", f"{params:,}" if params else "unknown"), ("layers x width", f"{layers} x {width}"),
            ("vocabulary", _fmt(hf.get("vocab_size"))), ("budget", budget),
            ("tokens seen", f"{tokens:,}" if isinstance(tokens, int) else "unknown"),
            ("global batch", _batch_text(train, info, metrics)),
            ("peak learning rate", _fmt(train.get("learning_rate"))), ("hardware", hardware),
            ("wall-clock", _minutes(seconds))]
    if init_from:
        rows.insert(0, ("initialised from", f"`{init_from}`" + (f" ({base})" if base and base != init_from else "")))
    ev = [(k, _fmt(v)) for k, v in metrics.items() if k.startswith("eval_") and isinstance(v, (int, float))
          and not k.endswith(("_runtime", "_per_second"))]
    hub, config, _ = _source_dataset(data_src)
    sections = [
        ("Training", _table(rows)),
        ("Evaluation (held-out blocks of the pretraining corpus)", _table(ev, ("metric", "value")) if ev else "none"),
        ("Intended use and limits",
         f"A starting point for fine-tuning on English classification, regression and extractive QA, and a "
         f"baseline for studying self-supervised pretraining. It is a {minutes} {size} encoder: far "
         "smaller and far less trained than published encoders (BERT-base has 110M parameters and was trained for "
         "about 40 passes over 3.3 billion words), so expect much lower task scores than theirs. It inherits the biases of its "
         "training text, and is not meant for any decision about people."),
        ("How to load", _load_snippet("AutoModelForMaskedLM" if objective == "mlm" else "AutoModelForCausalLM",
                                      "fill-mask" if objective == "mlm" else None,
                                      '"the city is [MASK] ."' if objective == "mlm" else None)),
        ("Resolved config", _config_section(cfg) if cfg else "not recorded"),
        ("Software", _versions(info)),
    ]
    data = {"library_name": "transformers", "language": "en", "license": "apache-2.0",
            "pipeline_tag": "fill-mask" if objective == "mlm" else "text-generation",
            "tags": ["nlp-ssl", arch, objective, "self-supervised"], "datasets": [hub] if hub else None,
            "base_model": base}
    return _Card("encoder", f"{arch} encoder ({params / 1e6:.1f}M parameters)" if params else f"{arch} encoder",
                 summary, sections, data)


_TASK_TYPES = {"classification": "text-classification", "regression": "text-classification",
               "extractive_qa": "question-answering"}


def _finetuned_card(model_dir: Path, cfg: dict, info: dict, metrics: dict, hf: dict, hardware: str) -> _Card:
    task = cfg.get("task") or {}
    if "task" in info and isinstance(info["task"], dict):  # the QA recipe records its resolved task
        task = {**task, **info["task"]}
    ttype = task.get("type", "classification")
    preset = task.get("preset") or "custom"
    arch = hf.get("model_type", "model")
    base_name = cfg.get("model")
    base = _base_model(base_name)
    init = metrics.get("init", cfg.get("init", "pretrained"))
    evals = metrics.get("eval") or {}
    chosen_on = metrics.get("selection_split")
    if chosen_on and chosen_on != metrics.get("report_split"):  # the split the run chose on is not a result
        evals = {k: v for k, v in evals.items() if k != chosen_on}
    sources = task.get("eval") or {}
    if ttype == "extractive_qa":
        version = task.get("version", "v1")
        names = ["exact_match", "f1"] if version == "v1" else ["exact", "f1", "HasAns_f1", "NoAns_f1"]
        n_train = metrics.get("train_questions")
        what = f"extractive question answering (SQuAD {version}.{'1' if version == 'v1' else '0'} style)"
    else:
        names = list(task.get("metrics") or [m for m in next(iter(evals.values()), {})])
        n_train = metrics.get("train_examples")
        labels = info.get("labels") or list((hf.get("id2label") or {}).values())
        what = f"{ttype} ({preset}" + (f": {', '.join(map(str, labels))}" if ttype == "classification" else "") + ")"
    seeds_summary, group = _seeds_summary(model_dir, metrics)
    fallback = f"{preset}"
    results = _eval_results(_TASK_TYPES.get(ttype, "text-classification"), evals, sources, fallback, names,
                            seeds_summary, cfg.get("max_eval_samples") if ttype == "extractive_qa" else None)
    start = {"pretrained": f"the encoder `{base_name}`" + (f" ([{base}](https://huggingface.co/{base}))" if base and base != base_name else ""),
             "scratch": f"random weights in the architecture of `{base_name}` (a from-scratch baseline)"}.get(init, init)
    summary = f"A {arch} model fine-tuned by nlp-ssl for {what}, starting from {start}."
    train = cfg.get("train") or {}
    rows = [("task", what), ("initialisation", init), ("starting model", f"`{base_name}`"),
            ("training data", _source_text(task.get("train"))),
            ("training examples", _fmt(n_train) + (" (a class-stratified sample)" if cfg.get("max_train_samples") and ttype != "extractive_qa" else "")),
            ("learning rate", _fmt(metrics.get("learning_rate"))), ("seed", _fmt(metrics.get("seed"))),
            ("optimizer steps", _fmt(metrics.get("steps"))), ("epochs / max steps", f"{train.get('num_train_epochs', train.get('num_epochs'))} / {train.get('max_steps')}"),
            ("hardware", hardware), ("wall-clock (training)", _minutes(metrics.get("train_seconds")))]
    ev_rows = []
    for split, ms in evals.items():
        for m in names:
            if m in ms:
                line = _fmt(ms[m])
                s = (seeds_summary or {}).get(split, {}).get(m)
                if s and s.get("n", 1) > 1:
                    line += f" (mean {_fmt(s['mean'])} ± {_fmt(s['std'])} over {s['n']} seeds)"
                ev_rows.append((f"{split}: {m}", line))
    if group and not seeds_summary:
        ev_rows.append(("note", "one run of a learning-rate grid that was not selected"))
    pipeline = "question-answering" if ttype == "extractive_qa" else "text-classification"
    auto = "AutoModelForQuestionAnswering" if ttype == "extractive_qa" else "AutoModelForSequenceClassification"
    example = ('question="What does the encoder learn from?", context="The encoder learns from unlabelled text."'
               if ttype == "extractive_qa" else '"a charming and funny film"')
    limits = (f"Trained for {preset} on {_fmt(n_train)} examples with a small encoder; the scores above are what "
              "to expect on text like its evaluation data, and less elsewhere. A research baseline for comparing "
              "pretrained against from-scratch initialisation, not a production model; it inherits the biases of "
              "its pretraining and task data.")
    sections = [("Training", _table(rows)), ("Evaluation", _table(ev_rows, ("split: metric", "value")) if ev_rows else "none"),
                ("Intended use and limits", limits), ("How to load", _load_snippet(auto, pipeline, example)),
                ("Resolved config", _config_section(cfg) if cfg else "not recorded"), ("Software", _versions(info))]
    hub_train, _, _ = _source_dataset(task.get("train"))
    data = {"library_name": "transformers", "language": "en", "license": "apache-2.0", "pipeline_tag": pipeline,
            "tags": ["nlp-ssl", arch, preset, init], "datasets": [hub_train] if hub_train else None,
            "base_model": base if init == "pretrained" else None, "metrics": names,
            "eval_results": results or None,
            "model_name": (f"{run_name(model_dir.parent)}-{run_name(model_dir)}" if group else run_name(model_dir))
            if results else None}
    return _Card("classifier" if ttype != "extractive_qa" else "qa", f"{arch} fine-tuned on {preset} ({init})",
                 summary, sections, data)


_TEMPLATE = "---\n{{ card_data }}\n---\n\n{{ body }}\n"


def build_model_card(model_dir: str | Path, hardware: str | None = None, model_name: str | None = None):
    """A `huggingface_hub.ModelCard` describing the model directory from the files a run left in it.

    Example:
        >>> card = build_model_card("runs/quickstart/sst2")  # doctest: +SKIP
        >>> card.data.eval_results[0].metric_type  # doctest: +SKIP
        'accuracy'
    """
    from huggingface_hub import ModelCard, ModelCardData

    model_dir = Path(model_dir)
    c = _describe(model_dir, hardware)
    data = {k: v for k, v in c.data.items() if v is not None}
    if model_name and "eval_results" in data:
        data["model_name"] = model_name
    card_data = ModelCardData(**data)
    body = [f"# {c.title}", "", c.summary, ""]
    for head, text in c.sections:
        body += [f"## {head}", "", text, ""]
    body.append("*Card written by [nlp-ssl](https://github.com/) from the run's own records "
                "(config.yaml, run_info.json, metrics.json).*")
    return ModelCard.from_template(card_data, template_str=_TEMPLATE, body="\n".join(body))


def write_model_card(model_dir: str | Path, hardware: str | None = None, repo_id: str | None = None) -> Path:
    """Write `README.md` (the model card) into `model_dir`; `repo_id` fills in the loading examples.

    Called at the end of every run that saves a model directory, from the process that writes outputs.
    """
    model_dir = Path(model_dir)
    card = build_model_card(model_dir, hardware or describe_hardware(), model_name=repo_id.split("/")[-1] if repo_id else None)
    text = str(card)
    if repo_id:
        text = text.replace('"REPO_ID"', f'"{repo_id}"')
    path = model_dir / CARD_FILE
    tmp = path.with_name(f".{CARD_FILE}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------------------------
# Push


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
    summary = _read_json(root / "metrics.json")
    if "runs" in summary:
        runs = sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())
        best = summary.get("selection", {}).get("best_learning_rate")
        seed = (summary.get("seeds") or [None])[0]
        hint = f"{root}/lr{best:g}-seed{seed}" if best is not None else f"{root}/{runs[0]}" if runs else ""
        raise HubError(f"{root} holds a multi-seed summary, not one model; push one of its runs ({', '.join(runs)}), "
                       f"e.g. nlp-ssl push {hint} --repo-id USER/NAME")
    raise HubError(f"{root} holds no config.json or tokenizer.json: not a model directory")


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
        if not _unreachable(e):
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
        if not _unreachable(e):
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
        reason = _http_reason(e) if isinstance(e, HfHubHTTPError) else f"{type(e).__name__}: {_short(e)}"
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
