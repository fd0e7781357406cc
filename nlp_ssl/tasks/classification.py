"""Text classification and regression tasks: the task description, GLUE/IMDB presets, loading and checking
the labelled splits, tokenisation with a truncation strategy, few-label sampling and pseudo-label selection.

A task reads its splits through `DataSourceConfig` (local files or the Hub by name), so any CSV/TSV/JSON
lines/Parquet file with named text column(s) and a label column works as well as the presets. Every split is
normalised to the columns `text_a`, `text_b` (sentence pairs only) and `label` (class id, or a float for
regression) before tokenisation, after checks that name the file, line and value of any bad example.

Example:
    >>> task = resolve_task(TaskConfig(preset="sst2"))
    >>> task.text_columns, task.labels, task.metrics
    (['sentence'], ['negative', 'positive'], ['accuracy'])
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from nlp_ssl.data.sources import DataSourceConfig, column, describe_source, load_source, resolve_paths
from nlp_ssl.errors import ConfigError, DataError
from nlp_ssl.metrics import METRICS, REGRESSION_METRICS


@dataclass
class TaskConfig:
    """A classification or regression task. With `preset`, every key left null takes the preset's value.

    Attributes:
        type: `classification` (one label per example) or `regression` (a real-valued score).
        preset: a known task whose sources, columns, labels and metrics fill the keys left null: the GLUE tasks
            sst2, cola, mrpc, stsb, rte (local copies + Hub), qnli, mnli, qqp, wnli (Hub), and imdb.
        train: the training split's source.
        eval: named evaluation splits (e.g. `dev`), each a source.
        held_out: named splits carved out of train, as fractions (e.g. `{dev: 0.1}`); chosen by a hash of each
            example's index and `split_seed`, so they never overlap train and do not depend on the file order
            of other splits.
        split_seed: seed of the held-out selection.
        held_out_unit: what `held_out` draws: `example` (each example on its own), `contained_text` (each
            example with the longest training text that contains its text word for word, so a sentence is held
            out with every phrase cut from it: GLUE SST-2's train is 67k phrases of about 7k sentences; single
            texts) or `shared_text` (examples that share a text in any text column stay together, e.g. a premise
            paired with several hypotheses, or a duplicated review). Fractions are then shares of those groups.
            Null: the preset's (contained_text for sst2, shared_text for the other presets), else example.
        text_columns: one column (single sentence) or two (sentence pair).
        label_column: the label column (class names or ids; numbers for regression).
        labels: class names in id order; integer labels index into it, string labels must be in it. Null: the
            sorted distinct labels of train.
        metrics: metric names (the first one picks learning rates and best rounds): accuracy, f1, macro_f1,
            matthews_correlation, pearson, spearmanr.
        selection_split: split used to choose the learning rate and, with train.eval_steps, the best weights
            (null: the first of eval/held_out). The presets carve it out of train (`held_out: {selection: ...}`).
        report_split: split whose metrics are the headline (null: `test` if there is one, else selection_split).
            Nothing should be chosen on it; when it is the selection split, the summary marks its figures as
            `oracle` (chosen on the data they report, so optimistic).
        max_length: tokens per example, special tokens included.
        truncation: which tokens a longer single text keeps: `head` (the start), `tail` (the end), or
            `head_tail` (`head_tokens` from the start, the rest from the end; Sun et al. 2019). Pairs: `head`.
        head_tokens: tokens kept from the start with `head_tail`.
        predict: unlabelled splits predicted after training, each a source with the text columns (e.g. GLUE's
            test file: `{test: {path: glue/sst2/test.tsv}}`); each writes `submission-<name>.tsv` into the run
            (`index\tprediction`, labels spelled as the GLUE server expects; see `tasks.prediction`). Null: none.
    """

    type: Literal["classification", "regression"] = "classification"
    preset: str | None = None
    train: DataSourceConfig | None = None
    eval: dict[str, DataSourceConfig] | None = None
    held_out: dict[str, float] | None = None
    split_seed: int = 0
    held_out_unit: Literal["example", "contained_text", "shared_text"] | None = None
    text_columns: list[str] | None = None
    label_column: str | None = None
    labels: list[str] | None = None
    metrics: list[str] | None = None
    selection_split: str | None = None
    report_split: str | None = None
    max_length: int = 128
    truncation: Literal["head", "tail", "head_tail"] = "head"
    head_tokens: int = 64
    predict: dict[str, DataSourceConfig] | None = None

    # runs written before held_out_unit drew examples one by one (a preset's null now groups them)
    ADDED: ClassVar[dict[str, Any]] = {"held_out_unit": "example"}

    def validate(self) -> list[str]:
        problems = []
        if self.preset is not None and self.preset not in PRESETS:
            close = difflib.get_close_matches(self.preset, list(PRESETS), n=1)
            problems.append(f"preset: unknown task {self.preset!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                            + f" (known: {', '.join(PRESETS)})")
        if self.max_length < 8:
            problems.append(f"max_length: must be at least 8, got {self.max_length}")
        if self.truncation == "head_tail" and not 0 < self.head_tokens < self.max_length - 2:
            problems.append(f"head_tokens: must be between 1 and max_length - 3 ({self.max_length - 3}) with "
                            f"truncation head_tail, got {self.head_tokens}")
        for name, frac in (self.held_out or {}).items():
            if not 0 < frac < 1:
                problems.append(f"held_out.{name}: a fraction in (0, 1), got {frac}")
        if sum((self.held_out or {}).values()) >= 1:
            problems.append("held_out: the fractions add up to 1 or more; nothing would be left to train on")
        return problems


_GLUE = "nyu-mll/glue"


def _src(path: str | None, hub_config: str | None, split: str, **kw: Any) -> DataSourceConfig:
    return DataSourceConfig(path=path, hub_name=_GLUE if hub_config else None, hub_config=hub_config, split=split, **kw)


def _glue(name: str, text_columns: list[str], labels: list[str] | None, metrics: list[str], local: bool,
          selection: float, eval_splits: dict[str, str] | None = None, unit: str | None = None,
          **local_kw: Any) -> TaskConfig:
    """A GLUE task: its labelled dev split(s) are reported; the learning rate (and best weights, with eval_steps)
    are chosen on `selection`, a seeded share of train carved out before any training sample is drawn, so
    nothing is chosen on the reported split."""
    def path(split):
        return f"glue/{name}/{split}.tsv" if local else None

    splits = eval_splits or {"dev": "validation"}
    return TaskConfig(
        type="regression" if labels is None else "classification",
        train=_src(path("train"), name, "train", **local_kw),
        eval={k: _src(path("dev") if k == "dev" else None, name, v, **local_kw) for k, v in splits.items()},
        held_out={"selection": selection}, held_out_unit=unit, text_columns=text_columns, label_column="label",
        labels=labels, metrics=metrics, selection_split="selection", report_split=next(iter(splits)))


_COLA_COLUMNS = {"header": False, "column_names": ["source", "label", "original_mark", "sentence"]}
_MRPC_COLUMNS = {"format": "tsv", "rename_columns": {"Quality": "label", "#1 String": "sentence1", "#2 String": "sentence2"}}

# Selection shares of train: about 1,000-4,000 examples on the large tasks, 10% on the small ones.
PRESETS: dict[str, TaskConfig] = {
    # SST-2's train is phrases cut from sentences: a sentence is held out with all of its phrases. Elsewhere
    # examples that share a text (a premise, a sentence scored against several, a duplicate) stay together.
    # The Hub-only presets group the same way (MNLI pairs a premise with three hypotheses, QNLI a question with
    # several sentences); their group sizes were not measured here (no local copy).
    "sst2": _glue("sst2", ["sentence"], ["negative", "positive"], ["accuracy"], local=True, selection=0.02,
                  unit="contained_text"),
    "cola": _glue("cola", ["sentence"], ["unacceptable", "acceptable"], ["matthews_correlation", "accuracy"],
                  local=True, selection=0.1, unit="shared_text", **_COLA_COLUMNS),
    "mrpc": TaskConfig(
        # The original MRPC files have no dev split (GLUE carves its 408 dev pairs out of train): the selection
        # split is a seeded 10% of train, and the original test file (labelled) is scored and reported as `test`.
        train=_src("glue/mrpc/msr_paraphrase_train.txt", "mrpc", "train", **_MRPC_COLUMNS),
        eval={"test": _src("glue/mrpc/msr_paraphrase_test.txt", "mrpc", "test", **_MRPC_COLUMNS)},
        held_out={"selection": 0.1}, held_out_unit="shared_text", text_columns=["sentence1", "sentence2"],
        label_column="label", labels=["not_equivalent", "equivalent"], metrics=["f1", "accuracy"], selection_split="selection",
        report_split="test"),
    "stsb": _glue("stsb", ["sentence1", "sentence2"], None, ["pearson", "spearmanr"], local=True, selection=0.1,
                  unit="shared_text", rename_columns={"score": "label"}),
    "rte": _glue("rte", ["sentence1", "sentence2"], ["entailment", "not_entailment"], ["accuracy"], local=True,
                 selection=0.1, unit="shared_text"),
    "qnli": _glue("qnli", ["question", "sentence"], ["entailment", "not_entailment"], ["accuracy"], local=False,
                  selection=0.02, unit="shared_text"),
    "mnli": _glue("mnli", ["premise", "hypothesis"], ["entailment", "neutral", "contradiction"], ["accuracy"],
                  local=False, selection=0.01, unit="shared_text", eval_splits={"dev_matched": "validation_matched",
                                                            "dev_mismatched": "validation_mismatched"}),
    "qqp": _glue("qqp", ["question1", "question2"], ["not_duplicate", "duplicate"], ["accuracy", "f1"], local=False,
                 selection=0.01, unit="shared_text"),
    "wnli": _glue("wnli", ["sentence1", "sentence2"], ["not_entailment", "entailment"], ["accuracy"], local=False,
                  selection=0.1, unit="shared_text"),
    # IMDB's test split is not among the local files: dev (model selection) and test (the reported accuracy)
    # are disjoint seeded parts of train.
    "imdb": TaskConfig(
        train=DataSourceConfig(path="sentiment/imdb/train.jsonl.gz", hub_name="stanfordnlp/imdb", split="train"),
        eval={}, held_out={"dev": 0.1, "test": 0.2}, held_out_unit="shared_text", text_columns=["text"],
        label_column="label",
        labels=["neg", "pos"], metrics=["accuracy"], selection_split="dev", report_split="test"),
}


def resolve_task(task: TaskConfig) -> TaskConfig:
    """Fill the keys left null from the preset, check the result, and pick the selection and report splits."""
    filled = task
    if task.preset:
        preset = PRESETS[task.preset]
        changes = {f.name: getattr(preset, f.name) for f in dataclasses.fields(task)
                   if getattr(task, f.name) is None and getattr(preset, f.name) is not None}
        if task.type == "classification" and preset.type == "regression":
            changes["type"] = "regression"
        filled = dataclasses.replace(task, **changes)
        need = len(preset.text_columns or [])
        if need and len(filled.text_columns or []) != need:
            kind = "a sentence-pair" if need == 2 else "a single-sentence"
            raise ConfigError([f"task.text_columns: {task.preset} is {kind} task and needs {need} column(s) "
                               f"(default {preset.text_columns}), got {filled.text_columns}"])
    problems = []
    if filled.train is None:
        problems.append("task.train: no training source; give one, or a preset")
    if not filled.text_columns or len(filled.text_columns) > 2:
        problems.append(f"task.text_columns: one column (single text) or two (sentence pair), got {filled.text_columns}")
    if not filled.label_column:
        problems.append("task.label_column: required (or a preset)")
    if len(filled.text_columns or []) == 2 and filled.truncation != "head":
        problems.append(f"task.truncation: {filled.truncation} applies to single texts; sentence pairs are cut "
                        "longest-first (use head)")
    metrics = filled.metrics or (["pearson", "spearmanr"] if filled.type == "regression" else ["accuracy"])
    for m in metrics:
        if m not in METRICS:
            problems.append(f"task.metrics: unknown metric {m!r}; available: {', '.join(METRICS)}")
        elif (m in REGRESSION_METRICS) != (filled.type == "regression"):
            problems.append(f"task.metrics: {m} does not fit a {filled.type} task")
    if filled.type == "regression" and filled.labels:
        problems.append("task.labels: a regression task has no class names; set labels: null")
    names = list(filled.eval or {}) + list(filled.held_out or {})
    if "train" in names:
        problems.append("task.eval / task.held_out: 'train' is the training split's name; call it something else")
    if not names:
        problems.append("task.eval: no evaluation split; give eval sources or held_out fractions")
    for key in ("selection_split", "report_split"):
        value = getattr(filled, key)
        if value is not None and value not in names and getattr(task, key) is None:
            filled = dataclasses.replace(filled, **{key: None})  # the preset's split, gone with its held_out
        elif value is not None and value not in names:
            problems.append(f"task.{key}: no split {value!r}; the task has {names}")
    if problems:
        raise ConfigError(problems)
    selection = filled.selection_split or names[0]
    report = filled.report_split or ("test" if "test" in names else selection)
    return dataclasses.replace(filled, metrics=metrics, selection_split=selection, report_split=report,
                               eval=dict(filled.eval or {}), held_out=dict(filled.held_out or {}))


# ----------------------------------------------------------------------------------------------------------
# Loading and checking splits


def _line_of(src: DataSourceConfig, data_dir: str | None, i: int) -> str:
    """Where example i of a source sits, for messages: `file, line N` for a single local file, else `example i`."""
    files = resolve_paths(src, data_dir)
    if len(files) == 1 and src.max_examples is None:
        name = files[0].name.lower()
        header = 1 if src.header and any(s in name for s in (".csv", ".tsv", ".txt")) else 0
        if not name.endswith((".parquet", ".json")):
            return f"{files[0]}, line {i + 1 + header}"
    return f"{describe_source(src, data_dir)}, example {i}"


def text_columns(ds, task: TaskConfig, src: DataSourceConfig, data_dir: str | None) -> dict[str, list]:
    """The task's text columns of `ds` as {text_a: [...], [text_b: [...]]}; a value that is not text is an error
    naming its file line."""
    cols: dict[str, list] = {}
    for name, col in zip(("text_a", "text_b"), task.text_columns):
        values = column(ds, col)
        bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
        if bad is not None:
            raise DataError(f"{_line_of(src, data_dir, bad)}: text column {col!r} is {values[bad]!r}, not text "
                            f"({sum(not isinstance(v, str) for v in values)} such rows in "
                            f"{describe_source(src, data_dir)}); remove or fill those rows")
        cols[name] = values
    return cols


def _normalise(ds, task: TaskConfig, src: DataSourceConfig, data_dir: str | None, labels: list[str] | None):
    """Check one split and map it to columns text_a, [text_b], label (class id or float)."""
    from datasets import Dataset

    where = describe_source(src, data_dir)
    if len(ds) == 0:
        raise DataError(f"{where}: the split is empty; point the source at a file with examples")
    cols = text_columns(ds, task, src, data_dir)
    raw = column(ds, task.label_column)
    if task.type == "regression":
        bad = next((i for i, v in enumerate(raw) if isinstance(v, bool) or not isinstance(v, (int, float))), None)
        if bad is not None:
            raise DataError(f"{_line_of(src, data_dir, bad)}: label {raw[bad]!r} in column {task.label_column!r} is "
                            "not a number, and a regression task needs numeric labels; fix the data, or set "
                            "task.type: classification for class labels")
        cols["label"] = [float(v) for v in raw]
    else:
        assert labels is not None
        index = {name: i for i, name in enumerate(labels)}
        ids = []
        for i, v in enumerate(raw):
            if isinstance(v, str) and v in index:
                ids.append(index[v])
            elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(labels):
                ids.append(v)
            else:
                raise DataError(f"{_line_of(src, data_dir, i)}: label {v!r} is not in the declared set {labels} "
                                f"(integer labels index into it: 0..{len(labels) - 1}); fix the data or task.labels")
        cols["label"] = ids
    cols["idx"] = list(range(len(ds)))
    return Dataset.from_dict(cols)


def infer_labels(values: list) -> list[str]:
    """Class names from a train label column: the sorted distinct values (as text)."""
    distinct = {v for v in values if v is not None}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in distinct):
        if distinct and sorted(distinct) != list(range(len(distinct))):
            raise DataError(f"integer labels {sorted(distinct)[:10]} are not 0..K-1; declare the class names in "
                            "task.labels (integer labels index into it)")
        return [str(v) for v in sorted(distinct)]
    return sorted(str(v) for v in distinct)


def held_out_keys(train, task: TaskConfig) -> np.ndarray:
    """What `held_out` hashes per training example: its index, or its group's (`task.held_out_unit`)."""
    from nlp_ssl.data.split import containment_groups, shared_text_groups

    if (task.held_out_unit or "example") == "example":
        return np.arange(len(train))
    texts = [[str(t) for t in column(train, name)] for name in ("text_a", "text_b") if name in train.column_names]
    if task.held_out_unit == "contained_text":
        if len(texts) > 1:
            raise ConfigError(["task.held_out_unit: contained_text groups the phrases of one text column; a "
                               "sentence-pair task groups by shared_text"])
        return containment_groups(texts[0])
    groups = shared_text_groups(*texts)
    largest = np.bincount(groups).max() / max(len(groups), 1)
    if largest > 0.05:  # a chain of shared texts: a held-out share can then be far from its fraction
        print(f"task.held_out_unit shared_text: one group of examples that share texts holds {100 * largest:.0f}% of "
              "train; the held-out splits' sizes can be far from their fractions (held_out_unit: example draws "
              "examples one by one)", flush=True)
    return groups


def load_task(task: TaskConfig, data_dir: str | None = None) -> tuple[dict[str, Any], list[str] | None]:
    """Load, check and normalise every split of a resolved task.

    Returns:
        ({split name: Dataset(text_a, [text_b], label, idx)}, class names or None for regression).
    """
    from nlp_ssl.data.split import hash_uniform

    columns = list(task.text_columns) + [task.label_column]
    train_raw = load_source(task.train, data_dir, columns)
    labels = task.labels
    if task.type == "classification" and labels is None:
        labels = infer_labels(column(train_raw, task.label_column))
    train = _normalise(train_raw, task, task.train, data_dir, labels)
    splits = {}
    if task.held_out:
        u = hash_uniform(held_out_keys(train, task), task.split_seed)
        lo = 0.0
        taken = np.zeros(len(train), dtype=bool)
        for name, frac in task.held_out.items():
            sel = (u >= lo) & (u < lo + frac)
            splits[name] = train.select(np.flatnonzero(sel))
            taken |= sel
            lo += frac
        train = train.select(np.flatnonzero(~taken))
        for name in task.held_out:
            if len(splits[name]) == 0:
                raise DataError(f"held_out.{name}: no example of {describe_source(task.train, data_dir)} fell in it; "
                                "raise the fraction")
    for name, src in task.eval.items():
        splits[name] = _normalise(load_source(src, data_dir, columns), task, src, data_dir, labels)
    return {"train": train, **splits}, labels


# ----------------------------------------------------------------------------------------------------------
# Tokenisation


def encode(ds, tokenizer, task: TaskConfig, num_proc: int | None = None):
    """Tokenise a normalised split: input_ids (+ token_type_ids, attention_mask), labels and a `length` column.

    Single texts longer than max_length keep their head, tail or head and tail (special tokens always kept);
    sentence pairs are cut longest-first.
    """
    pair = "text_b" in ds.column_names
    max_len, strategy, head = task.max_length, task.truncation, task.head_tokens

    def tokenize(batch):
        if pair:
            enc = tokenizer(batch["text_a"], batch["text_b"], truncation="longest_first", max_length=max_len)
        elif strategy == "head":
            enc = tokenizer(batch["text_a"], truncation=True, max_length=max_len)
        else:
            full = tokenizer(batch["text_a"], truncation=False, return_special_tokens_mask=True, verbose=False)
            enc = {k: [] for k in full if k != "special_tokens_mask"}
            for i, special in enumerate(full["special_tokens_mask"]):
                keep = _kept_positions(special, max_len, strategy, head)
                for k in enc:
                    row = full[k][i]
                    enc[k].append(row if keep is None else [row[j] for j in keep])
        out = dict(enc)
        out["labels"] = batch["label"]
        out["length"] = [len(x) for x in enc["input_ids"]]
        return out

    return ds.map(tokenize, batched=True, batch_size=1000, remove_columns=[c for c in ds.column_names if c != "idx"],
                  num_proc=num_proc, desc="tokenizing")


def _kept_positions(special: list[int], max_len: int, strategy: str, head: int) -> list[int] | None:
    """Positions kept of one tokenised text: leading/trailing special tokens plus the head/tail of the content."""
    n = len(special)
    if n <= max_len:
        return None
    lead = 0
    while lead < n and special[lead]:
        lead += 1
    trail = 0
    while trail < n - lead and special[n - 1 - trail]:
        trail += 1
    budget = max_len - lead - trail
    content = list(range(lead, n - trail))
    if strategy == "tail":
        kept = content[len(content) - budget:]
    else:  # head_tail
        h = min(head, budget)
        kept = content[:h] + content[len(content) - (budget - h):]
    return list(range(lead)) + kept + list(range(n - trail, n))


# ----------------------------------------------------------------------------------------------------------
# Few labels and self-training


def stratified_counts(counts: np.ndarray, n: int) -> np.ndarray:
    """How many of `n` examples each class gets: its share of `n` by largest remainder, with at least one each.

    Every class starts at the floor of its exact share (`count / total * n`), raised to 1. If those floors of
    one overshoot `n`, the classes most over their share give one back (never going below 1); if they fall
    short, the classes with the largest remainders get one more (never more than they have).

    Example:
        >>> stratified_counts(np.array([90, 5, 5]), 3).tolist()
        [1, 1, 1]
    """
    counts = np.asarray(counts, dtype=np.int64)
    if n < len(counts) or (counts < 1).any() or n > counts.sum():
        raise ValueError(f"need 1 <= every count and len(counts) <= n <= total; got counts {counts.tolist()}, n {n}")
    exact = counts / counts.sum() * n
    take = np.maximum(np.floor(exact).astype(np.int64), 1)
    while take.sum() > n:  # the one-per-class floor overshot: the class most over its share gives one back
        over = np.where(take > 1, take - exact, -np.inf)
        take[np.argmax(over)] -= 1
    while take.sum() < n:  # largest remainder first (stable: ties go to the lower class id)
        room = np.where(take < counts, exact - take, -np.inf)
        take[np.argmax(room)] += 1
    return take


def stratified_sample(labels: np.ndarray, n: int, seed: int, names: list[str] | None = None) -> np.ndarray:
    """Indices of a seeded sample of `n` examples whose class shares follow the full set's (at least one each).

    Shares are allocated by `stratified_counts`. Regression (names None): a plain seeded random sample.

    Raises:
        DataError: a class has no example, or `n` is smaller than the number of classes.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    if names is None:
        return np.sort(rng.choice(len(labels), n, replace=False))
    counts = np.bincount(labels.astype(int), minlength=len(names))
    empty = [names[c] for c in range(len(names)) if counts[c] == 0]
    if empty:
        raise DataError(f"max_train_samples: class(es) {empty} have no example in train, so a class-stratified "
                        "sample cannot include them; check the labels or task.labels")
    if n < len(names):
        raise DataError(f"max_train_samples: {n} is fewer than the {len(names)} classes; a stratified sample needs "
                        "at least one example per class")
    take = stratified_counts(counts, n)
    idx = [rng.choice(np.flatnonzero(labels == c), take[c], replace=False) for c in range(len(names))]
    return np.sort(np.concatenate(idx))


def select_pseudo_labels(probs: np.ndarray, threshold: float, max_per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Confident, class-balanced pseudo-labels: (indices into the pool, predicted class ids).

    An example qualifies when its top class probability is at least `threshold`. Every class then contributes
    the same number of examples, its most confident ones: the smallest class's count of qualifying examples,
    capped at `max_per_class`. Classes with no confident example make the selection empty (balance first).
    """
    pred = probs.argmax(-1)
    conf = probs.max(-1)
    ok = conf >= threshold
    per_class = [np.flatnonzero(ok & (pred == c)) for c in range(probs.shape[1])]
    k = min(len(p) for p in per_class)
    if max_per_class is not None:
        k = min(k, max_per_class)
    if k == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    chosen = np.concatenate([p[np.argsort(-conf[p], kind="stable")[:k]] for p in per_class])
    chosen.sort()
    return chosen, pred[chosen]



# ----------------------------------------------------------------------------------------------------------
# Scoring


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def score_predictions(logits: np.ndarray, gold: np.ndarray, task: TaskConfig, labels: list[str] | None,
                      idx: np.ndarray | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics of model outputs against the gold labels, and one prediction row per example.

    Classification rows: idx, label, prediction (class names) and the class probabilities; regression rows:
    idx, label, prediction (the score).
    """
    from nlp_ssl.metrics import compute_metrics

    idx = np.arange(len(gold)) if idx is None else idx
    if task.type == "regression":
        pred = logits.reshape(len(logits), -1)[:, 0]
        rows = [{"idx": int(i), "label": float(g), "prediction": float(p)} for i, g, p in zip(idx, gold, pred)]
        return compute_metrics(task.metrics, pred, gold), rows
    probs = softmax(logits)
    pred = probs.argmax(-1)
    rows = [{"idx": int(i), "label": labels[int(g)], "prediction": labels[int(p)],
             "probabilities": {name: round(float(q), 6) for name, q in zip(labels, pr)}}
            for i, g, p, pr in zip(idx, gold, pred, probs)]
    return compute_metrics(task.metrics, pred, gold), rows


def prediction_loss(logits: np.ndarray, gold: np.ndarray, task_type: str) -> float:
    """The mean loss the model trains on: cross-entropy of the class logits (N, C), or for regression the mean
    squared error of the scores (N, 1).

    Example:
        >>> round(prediction_loss(np.array([[0.0, 0.0]]), np.array([1]), "classification"), 4)   # ln 2
        0.6931
    """
    if task_type == "regression":
        return float(np.mean((logits.reshape(len(logits), -1)[:, 0] - gold) ** 2))
    z = logits - logits.max(-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-log_probs[np.arange(len(gold)), gold.astype(int)].mean())
