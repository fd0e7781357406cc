"""A markdown report that compares runs side by side, with the plots it links (`nlp-ssl report`).

Reads only what runs left on disk (metrics.json, config.yaml, run_info.json, log_history.json, predictions,
README.md), so it works on any finished runs and never reaches back into training code:

- pretraining runs: a table (parameters, steps, tokens, wall-clock, validation loss) and their curves;
- fine-tuning runs, grouped by task: pretrained against scratch per number of labels, mean ± std over seeds,
  and a 95% bootstrap confidence interval of each run's score over the evaluation examples (`evaluate`'s
  bootstrap, through `nlp_ssl.evaluate_metrics.bootstrap`), plus a label-efficiency plot (score against the
  number of labels, log x-axis, one line per initialisation);
- extractive QA runs (EM/F1), self-training rounds, and links to every model card.

Example:
    >>> write_report(["runs/quickstart"], "runs/quickstart/report")  # doctest: +SKIP
    PosixPath('runs/quickstart/report/report.md')
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp_ssl.errors import NlpSslError

REPORT_FILE = "report.md"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _yaml(path: Path) -> dict:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


@dataclass
class Seed:
    seed: int
    value: float
    run_dir: Path
    ci: tuple[float, float] | None = None


@dataclass
class Result:
    """One fine-tuning configuration: a single run, or the runs of a multi-seed directory."""

    name: str
    path: Path
    kind: str  # classification | regression | qa
    task: str
    init: str
    labels: int | None
    split: str
    metric: str
    seeds: list[Seed] = field(default_factory=list)
    learning_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return sum(s.value for s in self.seeds) / len(self.seeds)

    @property
    def std(self) -> float:
        if len(self.seeds) < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((s.value - m) ** 2 for s in self.seeds) / (len(self.seeds) - 1))


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories among `paths`: each path itself if it is a run, else its immediate subdirectories that are."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise NlpSslError(f"{p} is not a directory; give run directories (e.g. runs/quickstart/sst2) or a "
                              "directory of runs (e.g. runs/quickstart)")
        if _is_run(p):
            out.append(p)
        else:
            found = sorted(c for c in p.iterdir() if c.is_dir() and _is_run(c))
            if not found:
                raise NlpSslError(f"{p} holds no finished nlp-ssl run (no metrics.json, tokenizer_summary.json or "
                                  "run_info.json in it or its subdirectories)")
            out.extend(found)
    return out


def _is_run(p: Path) -> bool:
    return (p / "metrics.json").is_file() or (p / "tokenizer_summary.json").is_file()


def _labels(metrics: dict, cfg: dict, run_metrics: dict | None = None) -> int | None:
    n = cfg.get("max_train_samples") or metrics.get("max_train_samples")
    if n:
        return int(n)
    for m in (metrics, run_metrics or {}):
        for key in ("train_examples", "train_questions"):
            if isinstance(m.get(key), int):
                return m[key]
    return None


def _single_split(metrics: dict, task: dict) -> str:
    """The split a run reports: the one its metrics.json names (a preset fills it in, so the config may say null),
    never the selection split when there is another."""
    evals = list(metrics.get("eval") or {})
    for want in (metrics.get("report_split"), task.get("report_split")):
        if want in evals:
            return want
    if "test" in evals:
        return "test"
    others = [s for s in evals if s != (metrics.get("selection_split") or task.get("selection_split"))]
    return (others or evals)[0]


def read_result(run: Path) -> Result | dict | None:
    """A fine-tuning Result, a pretraining/tokenizer record (dict), or None for anything else."""
    metrics = _json(run / "metrics.json") or {}
    info = _json(run / "run_info.json") or {}
    cfg = _yaml(run / "config.yaml")
    task = cfg.get("task") or {}
    if info.get("command") == "pretrain" or "tokens_seen" in metrics:
        return {"kind": "pretrain", "name": run.name, "path": run, "metrics": metrics, "info": info, "cfg": cfg}
    if (run / "tokenizer_summary.json").is_file():
        return {"kind": "tokenizer", "name": run.name, "path": run, "summary": _json(run / "tokenizer_summary.json"),
                "cfg": cfg}
    if "summary" in metrics and "selection" in metrics:  # multi-seed classification
        split, metric = metrics["report_split"], metrics["selection"]["metric"]
        lr = metrics["selection"]["best_learning_rate"]
        seeds = [Seed(r["seed"], r["eval"][split][metric], run / f"lr{r['learning_rate']:g}-seed{r['seed']}")
                 for r in metrics["runs"]]
        first = _json(seeds[0].run_dir / "metrics.json") if seeds else None
        kind = "regression" if task.get("type") == "regression" else "classification"
        res = Result(run.name, run, kind, task.get("preset") or metrics.get("task") or "task", metrics.get("init", "?"),
                     _labels(metrics, cfg, first), split, metric, seeds, lr)
        if metrics.get("self_training_rounds"):
            res.extra["self_training"] = metrics["self_training_rounds"]
        return res
    if "eval" in metrics:
        if "train_features" in metrics or task.get("type") == "extractive_qa":
            split = _single_split(metrics, task)
            e = metrics["eval"][split]
            metric = "f1"
            res = Result(run.name, run, "qa", task.get("preset") or "squad", metrics.get("init", "?"),
                         _labels(metrics, cfg), split, metric, [Seed(metrics.get("seed", 1), e["f1"], run)],
                         metrics.get("learning_rate"))
            res.extra["em"] = e.get("exact_match", e.get("exact"))
            return res
        split = _single_split(metrics, task)
        metric = (task.get("metrics") or list(metrics["eval"][split]))[0]
        kind = "regression" if task.get("type") == "regression" else "classification"
        return Result(run.name, run, kind, task.get("preset") or "task", metrics.get("init", "?"), _labels(metrics, cfg),
                      split, metric, [Seed(metrics.get("seed", 1), metrics["eval"][split][metric], run)],
                      metrics.get("learning_rate"))
    return None


def _predictions(seed: Seed, split: str, kind: str) -> tuple[list, list, list] | None:
    """(predictions, references, example ids) of a run's predictions-<split>.jsonl, sorted by example id."""
    path = seed.run_dir / f"predictions-{split}.jsonl"
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda r: r.get("idx", 0))
    ids = [r.get("idx") for r in rows]
    if kind == "regression":
        return [float(r["prediction"]) for r in rows], [float(r["label"]) for r in rows], ids
    names = (_json(seed.run_dir / "run_info.json") or {}).get("labels") or sorted({r["label"] for r in rows})
    index = {n: i for i, n in enumerate(names)}
    return [index[r["prediction"]] for r in rows], [index[r["label"]] for r in rows], ids


def compare(a: Result, b: Result, n_resamples: int, seed: int = 0) -> dict[str, Any] | None:
    """Mean score of a's seeds minus b's on the same evaluation examples, with a paired bootstrap interval
    (None when a run has no predictions, or the two were scored on different examples)."""
    from nlp_ssl.evaluate_metrics import NAMES, bootstrap_difference

    if a.metric != b.metric or a.split != b.split or a.metric not in NAMES or a.kind == "qa":
        return None
    runs = [_predictions(s, a.split, a.kind) for s in (*a.seeds, *b.seeds)]
    if any(r is None for r in runs) or any(r[1:] != runs[0][1:] for r in runs):
        return None
    return bootstrap_difference(a.metric, [r[0] for r in runs[:len(a.seeds)]], [r[0] for r in runs[len(a.seeds):]],
                                runs[0][1], n_resamples=n_resamples, seed=seed)


def add_confidence_intervals(results: list[Result], n_resamples: int, seed: int = 0) -> None:
    """95% bootstrap interval of every run's score over its evaluation examples (needs predictions-<split>.jsonl)."""
    if n_resamples <= 0:
        return
    from nlp_ssl.evaluate_metrics import NAMES, bootstrap

    for r in results:
        if r.kind == "qa" or r.metric not in NAMES:
            continue
        for s in r.seeds:
            data = _predictions(s, r.split, r.kind)
            if data is None:
                continue
            out = bootstrap(r.metric, data[0], data[1], n_resamples=n_resamples, seed=seed)
            s.ci = out["confidence_interval"]


def _f(v: float | None, pct: bool) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{100 * v:.1f}" if pct else f"{v:.2f}"


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _pretrain_section(runs: list[dict], out: Path, plots: Path) -> list[str]:
    from nlp_ssl.plots import plot_pretraining

    lines = ["## Pretraining", "", "| run | parameters | steps | tokens seen | wall-clock | validation loss | "
             "perplexity | MLM accuracy | tokens/s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    images = []
    for r in runs:
        m, info = r["metrics"], r["info"]
        params = info.get("parameters")
        secs = m.get("train_runtime_s")
        lines.append(f"| [{r['name']}]({_rel(r['path'] / 'README.md', out)}) | "
                     f"{f'{params / 1e6:.2f}M' if params else 'n/a'} | {m.get('steps', 'n/a')} | "
                     f"{m.get('tokens_seen', 0):,} | {f'{secs / 60:.1f} min' if secs else 'n/a'} | "
                     f"{_f(m.get('eval_loss'), False)} | {_f(m.get('eval_perplexity'), False)} | "
                     f"{_f(m.get('eval_mlm_accuracy'), True)} | {m.get('tokens_per_second_mean', 0):,.0f} |")
        history = _json(r["path"] / "log_history.json")
        if isinstance(history, list) and history:
            steps = m.get("steps") or 0
            tps = m["tokens_seen"] / steps if steps and m.get("tokens_seen") else None
            for p in plot_pretraining(history, tps, plots / f"pretrain-{r['name']}", r["name"]):
                images.append(f"![{r['name']} {p.stem}]({_rel(p, out)})")
    lines += ["", "MLM accuracy in %. Curves: training and validation loss against optimizer steps and tokens seen, "
              "learning rate, throughput.", ""] + images + [""]
    return lines


def _differences(group: list[Result], pct: bool, unit: str, n_resamples: int) -> list[str]:
    """pretrained minus scratch (or any two initialisations) per number of labels, paired bootstrap interval."""
    rows = []
    by_labels: dict[Any, dict[str, Result]] = {}
    for r in group:
        by_labels.setdefault(r.labels, {})[r.init] = r
    for labels, inits in sorted(by_labels.items(), key=lambda kv: kv[0] or 10**12):
        if len(inits) != 2:
            continue
        a, b = (inits["pretrained"], inits["scratch"]) if {"pretrained", "scratch"} == set(inits) else \
            tuple(inits[k] for k in sorted(inits))
        d = compare(a, b, n_resamples)
        if d is None:
            continue
        lo, hi = d["confidence_interval"]
        scale = 100 if pct else 1
        sure = "yes" if lo > 0 or hi < 0 else "no"
        rows.append(f"| {labels or 'all'} | {a.init} − {b.init} | {scale * d['difference']:+.1f} | "
                    f"[{scale * lo:+.1f}, {scale * hi:+.1f}] | {sure} |")
    if not rows:
        return []
    return [f"Difference of the mean over seeds, paired bootstrap over the same evaluation examples "
            f"({n_resamples} resamples, 95%):", "",
            f"| labels | comparison | difference{unit} | 95% CI{unit} | interval excludes 0 |",
            "| --- | --- | --- | --- | --- |", *rows, ""]


def _run_images(group: list[Result], out: Path) -> list[str]:
    """Each run's own curves (plots/training.png; a multi-seed directory's grid.png and its first seed's run)."""
    lines: list[str] = []
    for r in sorted(group, key=lambda r: (r.labels or 10**12, r.init)):
        for name in ("grid.png", "training.png"):
            for png in [r.path / "plots" / name] + ([r.seeds[0].run_dir / "plots" / name] if r.seeds else []):
                link = f"![{r.name} {png.stem}]({_rel(png, out)})"
                if png.is_file() and link not in lines:
                    lines += [link, ""]
    return lines


def _finetune_section(results: list[Result], out: Path, plots: Path, n_resamples: int) -> list[str]:
    from nlp_ssl.plots import label_efficiency

    lines = ["## Fine-tuning", ""]
    by_task: dict[tuple[str, str, str], list[Result]] = {}
    for r in results:
        by_task.setdefault((r.task, r.kind, r.metric), []).append(r)
    for (task, kind, metric), group in sorted(by_task.items()):
        pct = kind == "classification"
        unit = " (%)" if pct else ""
        lines += [f"### {task}: {group[0].split} {metric}", ""]
        if kind == "qa":
            lines += ["| run | init | training questions | EM | F1 |", "| --- | --- | --- | --- | --- |"]
            for r in sorted(group, key=lambda r: (r.labels or 0, r.init)):
                lines.append(f"| [{r.name}]({_rel(r.path / 'README.md', out)}) | {r.init} | {r.labels or 'all'} | "
                             f"{r.extra.get('em', float('nan')):.2f} | {r.mean:.2f} |")
            lines.append("")
            lines += _run_images(group, out)
            continue
        ci_head = f" | 95% CI per seed{unit}" if n_resamples > 0 else ""
        lines += [f"| labels | init | mean ± std{unit} | seeds | per seed{unit}{ci_head} | lr | run |",
                  "| --- | --- | --- | --- | --- |" + (" --- |" if n_resamples > 0 else "") + " --- | --- |"]
        for r in sorted(group, key=lambda r: (r.labels or 10**12, r.init)):
            per_seed = " ".join(_f(s.value, pct) for s in r.seeds)
            spread = f"{_f(r.mean, pct)} ± {_f(r.std, pct)}" if len(r.seeds) > 1 else _f(r.mean, pct)
            ci = " ".join(f"[{_f(s.ci[0], pct)}, {_f(s.ci[1], pct)}]" if s.ci else "n/a" for s in r.seeds)
            lines.append(f"| {r.labels or 'all'} | {r.init} | {spread} | {len(r.seeds)} | "
                         f"{per_seed}" + (f" | {ci}" if n_resamples > 0 else "") +
                         f" | {r.learning_rate if r.learning_rate is not None else 'n/a'} | "
                         f"[{r.name}]({_rel(r.path, out)}) |")
        lines.append("")
        if n_resamples > 0:
            lines += _differences(group, pct, unit, n_resamples)
        inits = {r.init for r in group}
        counts = {r.labels for r in group}
        if len(counts) > 1 or len(inits) > 1:
            points: dict[str, list[tuple[int, float, float]]] = {}
            for r in group:
                if r.labels:
                    points.setdefault(r.init, []).append((r.labels, r.mean, r.std))
            if points:
                p = label_efficiency(points, plots / f"label-efficiency-{task}-{metric}.png",
                                     f"{group[0].split} {metric}", f"{task}: {metric} against labelled examples")
                lines += [f"![label efficiency {task}]({_rel(p, out)})", ""]
        lines += _run_images(group, out)
        for r in group:
            for rnd in r.extra.get("self_training", []):
                if rnd is r.extra["self_training"][0]:
                    lines += [f"Self-training ({r.name}):", "", "| round | pseudo-labels per seed | mean ± std |",
                              "| --- | --- | --- |"]
                s = rnd["summary"][r.split][metric]
                lines.append(f"| {rnd['round']} | {' '.join(map(str, rnd['pseudo_labels']))} | "
                             f"{_f(s['mean'], pct)} ± {_f(s['std'], pct)} |")
            if r.extra.get("self_training"):
                lines.append("")
    if n_resamples > 0:
        lines += [f"Confidence intervals: 95%, bootstrap over the evaluation examples ({n_resamples} resamples, "
                  "evaluate's bootstrap with nlp-ssl's metric modules); they show how much a score would move on "
                  "another sample of evaluation data of the same size, and say nothing about variation between "
                  "seeds (see mean ± std).", ""]
    return lines


def _card_summary(path: Path) -> str:
    """The card's first paragraph (what the model is), without its metadata header and title."""
    text = path.read_text(encoding="utf-8")
    if text.startswith("---"):
        text = text.split("---", 2)[2]
    for block in text.strip().split("\n\n"):
        block = block.strip()
        if block and not block.startswith(("#", "|", "```", "<")):
            return " ".join(block.split())
    return "(no summary)"


def write_report(paths: list[str | Path], output: str | Path, n_resamples: int = 1000,
                 title: str = "nlp-ssl report") -> Path:
    """Write `output/report.md` (and `output/plots/*.png`) comparing the runs found in `paths`."""
    out = Path(output)
    runs = find_runs(paths)
    records = [x for x in (read_result(r) for r in runs) if x is not None]
    if not records:
        raise NlpSslError(f"no pretraining, fine-tuning or tokenizer runs among {', '.join(map(str, paths))}")
    out.mkdir(parents=True, exist_ok=True)
    plots = out / "plots"
    results = [r for r in records if isinstance(r, Result)]
    add_confidence_intervals(results, n_resamples)
    where = ", ".join(f"`{r.path if isinstance(r, Result) else r['path']}`" for r in records)
    written = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"# {title}", "", f"Written {written} from {len(records)} run(s): {where}.", ""]
    toks = [r for r in records if isinstance(r, dict) and r["kind"] == "tokenizer"]
    if toks:
        lines += ["## Tokenizers", "", "| tokenizer | vocabulary | training documents | tokens per word | unknown rate |",
                  "| --- | --- | --- | --- | --- |"]
        for t in toks:
            s = t["summary"] or {}
            lines.append(f"| [{t['name']}]({_rel(t['path'] / 'README.md', out)}) | {s.get('vocab_size', 'n/a')} | "
                         f"{s.get('training_documents', 'n/a')} | {_f(s.get('tokens_per_word'), False)} | "
                         f"{s.get('unknown_rate', float('nan')):.2e} |")
        lines.append("")
    pre = [r for r in records if isinstance(r, dict) and r["kind"] == "pretrain"]
    if pre:
        lines += _pretrain_section(pre, out, plots)
    if results:
        lines += _finetune_section(results, out, plots, n_resamples)
    cards = [(r.name if s.run_dir == r.path else f"{r.name}/{s.run_dir.name}", s.run_dir) for r in results
             for s in r.seeds] + [(r["name"], r["path"]) for r in toks + pre]
    cards = [(n, p) for n, p in cards if (p / "README.md").is_file()]
    if cards:
        lines += ["## Model cards", "", "Each model directory holds its card (README.md), ready for the Hub "
                  "(`nlp-ssl push DIR --repo-id USER/NAME --dry-run` shows what would be shared):", ""]
        for n, p in cards:
            lines.append(f"- [{n}]({_rel(p / 'README.md', out)}): {_card_summary(p / 'README.md')}")
        lines.append("")
    path = out / REPORT_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
