"""Model cards: a `README.md` for every directory a run saves (tokenizer, encoder, fine-tuned model).

Made with `huggingface_hub`'s `ModelCard`/`ModelCardData`/`EvalResult` from the files the run left there
(config.yaml, run_info.json, metrics.json, config.json), so a card can be rebuilt at any time and needs nothing
from the recipe that wrote the directory. Evaluation results go into the Hub's `model-index`.

How to load the model (the usage snippet and the `pipeline_tag`) is never guessed from the objective or task name:
it is the `Artifact` its maker recorded in `run_info.json` (an objective for an encoder, the task for a fine-tuned
model). A directory written before those records falls back to its `config.json` `architectures`, by the naming
rule transformers' Auto classes follow (`BertForMaskedLM` -> `AutoModelForMaskedLM`).

Only the standard library is imported at module level; `huggingface_hub` and `yaml` inside the functions, so
`nlp-ssl push --dry-run` builds a card without torch or transformers.

Example:
    >>> card = build_model_card("runs/quickstart/encoder")  # doctest: +SKIP
    >>> card.data.pipeline_tag  # doctest: +SKIP
    'fill-mask'
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nlp_ssl.artifact import Artifact
from nlp_ssl.errors import NlpSslError
from nlp_ssl.hub.inputs import looks_like_hub_id
from nlp_ssl.layout import CARD_FILE, CONFIG_FILE, METRICS_FILE, RUN_INFO_FILE, TOKENIZER_SUMMARY_FILE

__all__ = ["CARD_FILE", "artifact_of", "auto_class_for", "build_model_card", "describe_hardware", "run_name",
           "usage_snippet", "write_model_card"]


# ----------------------------------------------------------------------------------------------------------
# What the directory holds: the maker's Artifact, or (older directories) one read from config.json

# The pipeline that matches each Auto class's head (None: no `transformers.pipeline` task uses that head).
PIPELINE_TAGS: dict[str, str | None] = {
    "AutoModelForMaskedLM": "fill-mask", "AutoModelForCausalLM": "text-generation",
    "AutoModelForSequenceClassification": "text-classification", "AutoModelForQuestionAnswering": "question-answering",
    "AutoModelForTokenClassification": "token-classification", "AutoModelForPreTraining": None,
    "AutoModel": "feature-extraction",
}
# Architecture class suffix -> Auto class: the naming convention of transformers' Auto mappings for the encoders
# nlp-ssl builds (tests/test_hub.py checks it against those mappings). Read from the name so that a card needs no
# transformers import; first match wins (`BertLMHeadModel` is a causal LM, not a bare `*Model`).
_SUFFIXES = (("ForQuestionAnswering", "AutoModelForQuestionAnswering"),
             ("ForSequenceClassification", "AutoModelForSequenceClassification"),
             ("ForTokenClassification", "AutoModelForTokenClassification"), ("ForMaskedLM", "AutoModelForMaskedLM"),
             ("ForCausalLM", "AutoModelForCausalLM"), ("LMHeadModel", "AutoModelForCausalLM"),
             ("ForPreTraining", "AutoModelForPreTraining"), ("Model", "AutoModel"))


def auto_class_for(architecture: str) -> str | None:
    """The Auto class that loads a `config.json` architecture with its head (`ElectraForPreTraining` ->
    `AutoModelForPreTraining`), or None for a name outside the convention."""
    return next((auto for suffix, auto in _SUFFIXES if architecture.endswith(suffix)), None)


def artifact_of(model_dir: str | Path) -> Artifact:
    """What `model_dir` holds and how to load it: `run_info.json["artifact"]` as its maker recorded it; for a
    directory written before those records, its `config.json` architecture mapped to an Auto class (a bare
    `AutoModel` when config.json names none)."""
    model_dir = Path(model_dir)
    recorded = Artifact.from_dict(_read_json(model_dir / RUN_INFO_FILE).get("artifact"))
    if recorded is not None:
        return recorded
    hf = _read_json(model_dir / "config.json")
    arch = next(iter(hf.get("architectures") or []), None)
    auto = auto_class_for(arch) if isinstance(arch, str) else None
    if auto is None:
        return Artifact("AutoModel", "feature-extraction", f"a {hf.get('model_type', 'transformers')} model "
                        "(its head is not recorded: AutoModel loads the encoder without it)")
    return Artifact(auto, PIPELINE_TAGS.get(auto), f"a `{arch}` model")


# One call per pipeline for the usage snippet; `pipe` is the pipeline. Fill-mask asks the tokenizer for its mask
# token, since the project's tokenizers spell it [MASK] or <mask>.
_EXAMPLES = {
    "fill-mask": 'print(pipe(f"the city is {pipe.tokenizer.mask_token} ."))',
    "text-generation": 'print(pipe("the city is", max_new_tokens=8))',
    "text-classification": 'print(pipe("a charming and funny film"))',
    "token-classification": 'print(pipe("Ada Lovelace was born in London ."))',
    "feature-extraction": 'features = pipe("the city is large .")  # [1][tokens][hidden]\n'
                          'print(len(features[0]), "tokens x", len(features[0][0]))',
}
# Hub tags whose transformers pipeline is gone (transformers 5 removed "question-answering"): the snippet runs
# the head itself.
_WITHOUT_PIPELINE = {
    "question-answering": """import torch

question, context = "What does the encoder learn from?", "The encoder learns from unlabelled text."
inputs = tokenizer(question, context, return_tensors="pt")
with torch.no_grad():
    out = model(**inputs)
start, end = int(out.start_logits.argmax()), int(out.end_logits.argmax())  # the best start and end, (1, T) each
print(tokenizer.decode(inputs["input_ids"][0, start:max(start, end) + 1]))""",
}


def usage_snippet(artifact: Artifact) -> str:
    """The card's "How to load" code block: the tokenizer and the model through the artifact's Auto class, then
    its pipeline (when transformers has one) on an example. `REPO_ID` stands for the repository (or a local
    directory)."""
    auto, tag = artifact.auto_class, artifact.pipeline_tag
    lines = ["```python", f"from transformers import AutoTokenizer, {auto}", "",
             'repo = "REPO_ID"  # or the local directory', "tokenizer = AutoTokenizer.from_pretrained(repo)",
             f"model = {auto}.from_pretrained(repo)"]
    if tag in _WITHOUT_PIPELINE:
        lines += ["", _WITHOUT_PIPELINE[tag]]
    elif tag:
        lines += ["", "from transformers import pipeline", f'pipe = pipeline("{tag}", model=repo)']
        if tag in _EXAMPLES:
            lines.append(_EXAMPLES[tag])
    lines.append("```")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Reading the run's records


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
    hub = _read_config(p / CONFIG_FILE).get("hub") or {}
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
    parent = _read_json(model_dir.parent / METRICS_FILE)
    if "summary" not in parent or "selection" not in parent:
        return None, None
    if metrics.get("learning_rate") != parent["selection"].get("best_learning_rate"):
        return None, parent
    return parent["summary"], parent


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


# ----------------------------------------------------------------------------------------------------------
# The cards: tokenizer, encoder, fine-tuned model


def _describe(model_dir: Path, hardware: str | None) -> _Card:
    info = _read_json(model_dir / RUN_INFO_FILE)
    cfg = _read_config(model_dir / CONFIG_FILE)
    metrics = _read_json(model_dir / METRICS_FILE)
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
    s = _read_json(model_dir / TOKENIZER_SUMMARY_FILE)
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


# The pretext task in words, for the card's prose (what it loads as comes from the Artifact, never from here).
_OBJECTIVES = {"mlm": "masked language modelling", "clm": "next-token language modelling",
               "electra": "replaced-token detection (ELECTRA)", "simcse": "contrastive sentence embeddings (SimCSE)"}


def _encoder_card(model_dir: Path, cfg: dict, info: dict, metrics: dict, hf: dict, hardware: str) -> _Card:
    arch = hf.get("model_type", "encoder")
    params = info.get("parameters")
    seconds = metrics.get("train_runtime_s")
    tokens = metrics.get("tokens_seen")
    objective = (cfg.get("objective") or {}).get("task", "mlm")
    train = cfg.get("train") or {}
    prep = _read_config(Path(str(cfg.get("data", ""))) / CONFIG_FILE)
    data_src = prep.get("data")
    size = f"{params / 1e6:.1f}M-parameter" if params else "small"
    layers, width = hf.get("num_hidden_layers"), hf.get("hidden_size")
    minutes = (f"{seconds / 60:.0f}-minute" if seconds >= 90 else f"{seconds:.0f}-second") if seconds else "briefly trained"
    init_from = (cfg.get("model") or {}).get("init_from")
    base = _base_model(init_from)
    what = _OBJECTIVES.get(objective, objective)
    if objective == "mlm" and (cfg.get("objective") or {}).get("sentence_order"):
        what += " and sentence-order prediction"
    artifact = artifact_of(model_dir)
    summary = (f"A {minutes} {size} {arch} encoder ({layers} layers, width {width}) pretrained with {what} by "
               f"nlp-ssl" + (f", continuing from {base or init_from}" if init_from else "") + ". "
               f"Saved as {artifact.description}.")
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
        ("How to load", usage_snippet(artifact)),
        ("Resolved config", _config_section(cfg) if cfg else "not recorded"),
        ("Software", _versions(info)),
    ]
    data = {"library_name": "transformers", "language": "en", "license": "apache-2.0",
            "pipeline_tag": artifact.pipeline_tag,
            "tags": ["nlp-ssl", arch, objective, "self-supervised"], "datasets": [hub] if hub else None,
            "base_model": base}
    return _Card("encoder", f"{arch} encoder ({params / 1e6:.1f}M parameters)" if params else f"{arch} encoder",
                 summary, sections, data)


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
    # What the task is, its metric names and how its training sample was drawn are recorded by the task that
    # made the run (tasks.registry, run_info.json); a run from before that record falls back to its config.
    names = list(info.get("metric_names") or task.get("metrics") or [m for m in next(iter(evals.values()), {})])
    what = info.get("task_description") or f"{ttype} ({preset})"
    n_train = metrics.get("train_examples", metrics.get("train_questions"))
    sample = info.get("train_sample")
    artifact = artifact_of(model_dir)
    seeds_summary, group = _seeds_summary(model_dir, metrics)
    fallback = f"{preset}"
    results = _eval_results(artifact.pipeline_tag or "text-classification", evals, sources, fallback, names,
                            seeds_summary, cfg.get("max_eval_samples"))
    start = {"pretrained": f"the encoder `{base_name}`" + (f" ([{base}](https://huggingface.co/{base}))" if base and base != base_name else ""),
             "scratch": f"random weights in the architecture of `{base_name}` (a from-scratch baseline)"}.get(init, init)
    summary = f"A {arch} model fine-tuned by nlp-ssl for {what}, starting from {start}."
    train = cfg.get("train") or {}
    rows = [("task", what), ("initialisation", init), ("starting model", f"`{base_name}`"),
            ("training data", _source_text(task.get("train"))),
            ("training examples", _fmt(n_train) + (f" ({sample})" if cfg.get("max_train_samples") and sample else "")),
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
    limits = (f"Trained for {preset} on {_fmt(n_train)} examples with a small encoder; the scores above are what "
              "to expect on text like its evaluation data, and less elsewhere. A research baseline for comparing "
              "pretrained against from-scratch initialisation, not a production model; it inherits the biases of "
              "its pretraining and task data.")
    sections = [("Training", _table(rows)), ("Evaluation", _table(ev_rows, ("split: metric", "value")) if ev_rows else "none"),
                ("Intended use and limits", limits), ("How to load", usage_snippet(artifact)),
                ("Resolved config", _config_section(cfg) if cfg else "not recorded"), ("Software", _versions(info))]
    hub_train, _, _ = _source_dataset(task.get("train"))
    data = {"library_name": "transformers", "language": "en", "license": "apache-2.0",
            "pipeline_tag": artifact.pipeline_tag,
            "tags": ["nlp-ssl", arch, preset, init], "datasets": [hub_train] if hub_train else None,
            "base_model": base if init == "pretrained" else None, "metrics": names,
            "eval_results": results or None,
            "model_name": (f"{run_name(model_dir.parent)}-{run_name(model_dir)}" if group else run_name(model_dir))
            if results else None}
    return _Card("finetuned", f"{arch} fine-tuned on {preset} ({init})",
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
