"""A markdown report that compares runs side by side, with the plots it links (`nlp-ssl report`).

Reads only what runs left on disk, through `nlp_ssl.layout` (`read_run`: metrics.json, config.yaml,
run_info.json, grid cells; log_history.json, predictions, README.md), so it works on any finished runs and never
reaches back into training code:

- pretraining runs: a table (parameters, steps, tokens, wall-clock, validation loss) and their curves;
- fine-tuning runs, grouped by task: pretrained against scratch per number of labels, mean ± std over seeds,
  and a 95% bootstrap confidence interval of each run's score over the evaluation examples
  (`nlp_ssl.metrics.bootstrap`, seeded), plus a label-efficiency plot (score against the number of labels, log
  x-axis, one line per initialisation);
- extractive QA runs (EM/F1, intervals over questions when the run saved its predictions with their reference
  answers), self-training rounds, and links to every model card.

Example:
    >>> write_report(["runs/quickstart"], "runs/quickstart/report")  # doctest: +SKIP
    PosixPath('runs/quickstart/report/report.md')
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nlp_ssl.errors import NlpSslError
from nlp_ssl.layout import (CARD_FILE, LOG_HISTORY_FILE, METRICS_FILE, PLOTS_DIR, RUN_INFO_FILE, FinishedRun, is_run,
                            predictions_file, read_json, read_jsonl, read_run)

REPORT_FILE = "report.md"


@dataclass
class Seed:
    """One run of a configuration (one seed at the chosen rate): its headline score, and for QA its exact match;
    `ci`/`em_ci`: their 95% bootstrap intervals over the evaluation examples, once computed."""

    seed: int
    value: float
    run_dir: Path
    ci: tuple[float, float] | None = None
    em: float | None = None
    em_ci: tuple[float, float] | None = None


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
        return _std([s.value for s in self.seeds])


def _std(values: list[float]) -> float:
    """Sample standard deviation (0 for one value)."""
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories among `paths`: each path itself if it is a run, else its immediate subdirectories that are."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise NlpSslError(f"{p} is not a directory; give run directories (e.g. runs/quickstart/sst2) or a "
                              "directory of runs (e.g. runs/quickstart)")
        if is_run(p):
            out.append(p)
        else:
            found = sorted(c for c in p.iterdir() if c.is_dir() and is_run(c))
            if not found:
                raise NlpSslError(f"{p} holds no finished nlp-ssl run (no metrics.json or tokenizer_summary.json in "
                                  "it or its subdirectories)")
            out.extend(found)
    return out


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


def _kind(run: FinishedRun, metrics: dict) -> str:
    """The report table a run goes into, as its task declares (`tasks.registry`: its ReportSection)."""
    from nlp_ssl.tasks.registry import spec_for_run

    return spec_for_run(metrics, run.task).report.kind


def _em(scores: dict) -> float | None:
    """QA exact match under either name (SQuAD v1.1 `exact_match`, v2.0 `exact`)."""
    return scores.get("exact_match", scores.get("exact"))


def read_result(run: Path) -> Result | dict | None:
    """A fine-tuning Result, a pretraining/tokenizer record (dict), or None for anything else."""
    fr = read_run(run)
    metrics, task = fr.metrics, fr.task
    if fr.kind == "pretrain":
        return {"kind": "pretrain", "name": fr.name, "path": fr.path, "metrics": metrics, "info": fr.run_info,
                "cfg": fr.config}
    if fr.kind == "tokenizer":
        return {"kind": "tokenizer", "name": fr.name, "path": fr.path, "summary": fr.summary, "cfg": fr.config}
    if fr.kind == "grid":  # rates x seeds: the seeds at the chosen rate
        split = metrics["report_split"]
        lr = metrics["selection"]["best_learning_rate"]
        first = read_json(fr.cell(metrics["runs"][0]["learning_rate"], metrics["runs"][0]["seed"]) / METRICS_FILE,
                          {}) if metrics["runs"] else {}
        kind = _kind(fr, first)
        from nlp_ssl.tasks.registry import report_section

        metric = report_section(kind).metric or metrics["selection"]["metric"]
        seeds = [Seed(r["seed"], r["eval"][split][metric], fr.cell(r["learning_rate"], r["seed"]),
                      em=_em(r["eval"][split]) if kind == "qa" else None) for r in metrics["runs"]]
        res = Result(fr.name, fr.path, kind, task.get("preset") or metrics.get("task") or "task",
                     metrics.get("init", "?"), _labels(metrics, fr.config, first), split, metric, seeds, lr)
        if kind == "qa":
            res.extra["em"] = sum(s.em for s in seeds) / len(seeds)
        if metrics.get("self_training_rounds"):
            res.extra["self_training"] = metrics["self_training_rounds"]
        return res
    if fr.kind != "finetune":
        return None
    split = _single_split(metrics, task)
    scores = metrics["eval"][split]
    kind = _kind(fr, metrics)
    preset = task.get("preset") or ("squad" if kind == "qa" else "task")
    if kind == "qa":
        seed = Seed(metrics.get("seed", 1), scores["f1"], fr.path, em=_em(scores))
        res = Result(fr.name, fr.path, kind, preset, metrics.get("init", "?"), _labels(metrics, fr.config), split,
                     "f1", [seed], metrics.get("learning_rate"))
        res.extra["em"] = seed.em
        return res
    metric = (task.get("metrics") or list(scores))[0]
    return Result(fr.name, fr.path, kind, preset, metrics.get("init", "?"), _labels(metrics, fr.config), split,
                  metric, [Seed(metrics.get("seed", 1), scores[metric], fr.path)], metrics.get("learning_rate"))


# ----------------------------------------------------------------------------------------------------------
# Bootstrap intervals over the evaluation examples (nlp_ssl.metrics.bootstrap)

Scorer = Callable[[np.ndarray], float]  # the score of a run on the evaluation examples at these indices


@dataclass
class _Scored:
    """A run's predictions as the bootstrap needs them: which examples (ids, sorted), and how to score a subset."""

    ids: list
    references: list
    score: Scorer
    em: Scorer | None = None  # QA: exact match on the same questions


def _scored(seed: Seed, split: str, kind: str, metric: str) -> _Scored | None:
    """How to score a run on any subset of its evaluation examples, from its predictions-<split>.jsonl; None when
    it saved none (or, for QA, saved them without their reference answers)."""
    from nlp_ssl.metrics import METRICS

    path = seed.run_dir / predictions_file(split)
    if not path.is_file():
        return None
    rows = read_jsonl(path)
    if kind == "qa":
        return _scored_qa(rows, seed, split)
    if metric not in METRICS:
        return None
    rows.sort(key=lambda r: r.get("idx", 0))
    ids = [r.get("idx") for r in rows]
    if kind == "regression":
        preds, refs = np.array([float(r["prediction"]) for r in rows]), np.array([float(r["label"]) for r in rows])
    else:
        names = read_json(seed.run_dir / RUN_INFO_FILE, {}).get("labels") or sorted({r["label"] for r in rows})
        index = {n: i for i, n in enumerate(names)}
        preds = np.array([index[r["prediction"]] for r in rows])
        refs = np.array([index[r["label"]] for r in rows])
    fn = METRICS[metric]
    return _Scored(ids, refs.tolist(), lambda i: fn(preds[i], refs[i]))


def _scored_qa(rows: list[dict], seed: Seed, split: str) -> _Scored | None:
    """QA rows ({"id", "prediction": the answer given, "answers": reference texts}) scored per question as the
    official script does (v2.0 rules when the run reported v2.0's `exact`), in %."""
    from nlp_ssl.squad_metrics import question_scores

    if not rows or any("answers" not in r for r in rows):
        return None
    rows = sorted(rows, key=lambda r: str(r["id"]))
    evals = read_json(seed.run_dir / METRICS_FILE, {}).get("eval") or {}
    version = "v2" if "exact" in (evals.get(split) or {}) else "v1"
    ids = [r["id"] for r in rows]
    scores = question_scores({r["id"]: r["prediction"] for r in rows}, {r["id"]: list(r["answers"]) for r in rows},
                             version)
    f1 = 100 * np.array([scores["f1"][q] for q in ids])
    em = 100 * np.array([scores["exact_match"][q] for q in ids])
    return _Scored(ids, [sorted(r["answers"]) for r in rows], lambda i: float(f1[i].mean()),
                   lambda i: float(em[i].mean()))


def compare(a: Result, b: Result, n_resamples: int, seed: int = 0):
    """Mean score of a's seeds minus b's on the same evaluation examples, with a paired bootstrap interval
    (`metrics.Bootstrap`; None when a run has no predictions, or the two were scored on different examples)."""
    from nlp_ssl.metrics import bootstrap

    if a.metric != b.metric or a.split != b.split or a.kind != b.kind:
        return None
    runs = [_scored(s, a.split, a.kind, a.metric) for s in (*a.seeds, *b.seeds)]
    if any(r is None for r in runs) or any((r.ids, r.references) != (runs[0].ids, runs[0].references) for r in runs):
        return None
    side_a, side_b = runs[:len(a.seeds)], runs[len(a.seeds):]

    def difference(i: np.ndarray) -> float:
        return float(np.mean([r.score(i) for r in side_a]) - np.mean([r.score(i) for r in side_b]))

    return bootstrap(difference, len(runs[0].ids), n_resamples=n_resamples, seed=seed)


def add_confidence_intervals(results: list[Result], n_resamples: int, seed: int = 0) -> None:
    """95% bootstrap interval of every run's score over its evaluation examples (needs predictions-<split>.jsonl;
    QA: over questions, for F1 and exact match)."""
    if n_resamples <= 0:
        return
    from nlp_ssl.metrics import bootstrap
    from nlp_ssl.tasks.registry import report_section

    for r in results:
        if not report_section(r.kind).bootstrap:  # the task saves no per-example rows to resample
            continue
        for s in r.seeds:
            data = _scored(s, r.split, r.kind, r.metric)
            if data is None:
                continue
            s.ci = bootstrap(data.score, len(data.ids), n_resamples=n_resamples, seed=seed).interval
            if data.em is not None:
                s.em_ci = bootstrap(data.em, len(data.ids), n_resamples=n_resamples, seed=seed).interval


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
        lines.append(f"| [{r['name']}]({_rel(r['path'] / CARD_FILE, out)}) | "
                     f"{f'{params / 1e6:.2f}M' if params else 'n/a'} | {m.get('steps', 'n/a')} | "
                     f"{m.get('tokens_seen', 0):,} | {f'{secs / 60:.1f} min' if secs else 'n/a'} | "
                     f"{_f(m.get('eval_loss'), False)} | {_f(m.get('eval_perplexity'), False)} | "
                     f"{_f(m.get('eval_mlm_accuracy'), True)} | {m.get('tokens_per_second_mean', 0):,.0f} |")
        history = read_json(r["path"] / LOG_HISTORY_FILE, None)
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
        lo, hi = d.interval
        scale = 100 if pct else 1
        sure = "yes" if lo > 0 or hi < 0 else "no"
        rows.append(f"| {labels or 'all'} | {a.init} − {b.init} | {scale * d.value:+.1f} | "
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
            for png in [r.path / PLOTS_DIR / name] + ([r.seeds[0].run_dir / PLOTS_DIR / name] if r.seeds else []):
                link = f"![{r.name} {png.stem}]({_rel(png, out)})"
                if png.is_file() and link not in lines:
                    lines += [link, ""]
    return lines


def _qa_table(group: list[Result], out: Path, n_resamples: int) -> list[str]:
    """Extractive QA: EM and F1 (%) as mean ± std over seeds, and each seed's 95% interval over questions."""
    def spread(values: list[float]) -> str:
        m = sum(values) / len(values)
        return f"{m:.2f} ± {_std(values):.2f}" if len(values) > 1 else f"{m:.2f}"

    def interval(ci: tuple[float, float] | None) -> str:
        return f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "n/a"

    ci_head = " | EM 95% CI per seed | F1 95% CI per seed" if n_resamples > 0 else ""
    lines = [f"| training questions | init | EM | F1 | seeds{ci_head} | lr | run |",
             "| --- | --- | --- | --- | ---" + (" | --- | ---" if n_resamples > 0 else "") + " | --- | --- |"]
    for r in sorted(group, key=lambda r: (r.labels or 10**12, r.init)):
        ems = [s.em for s in r.seeds if s.em is not None]
        cis = " | " + " ".join(interval(s.em_ci) for s in r.seeds) + " | " + " ".join(interval(s.ci) for s in r.seeds)
        single = [s.run_dir for s in r.seeds] == [r.path]  # a model directory: link its card; a grid: the folder
        lines.append(f"| {r.labels or 'all'} | {r.init} | {spread(ems) if ems else 'n/a'} | "
                     f"{spread([s.value for s in r.seeds])} | {len(r.seeds)}" + (cis if n_resamples > 0 else "")
                     + f" | {r.learning_rate if r.learning_rate is not None else 'n/a'} | "
                     f"[{r.name}]({_rel(r.path / CARD_FILE if single else r.path, out)}) |")
    return lines


def _finetune_section(results: list[Result], out: Path, plots: Path, n_resamples: int) -> list[str]:
    from nlp_ssl.plots import label_efficiency

    lines = ["## Fine-tuning", ""]
    by_task: dict[tuple[str, str, str], list[Result]] = {}
    for r in results:
        by_task.setdefault((r.task, r.kind, r.metric), []).append(r)
    for (task, kind, metric), group in sorted(by_task.items()):
        from nlp_ssl.tasks.registry import report_section

        pct = report_section(kind).pct  # scores in [0, 1] as percentages, as the task declares
        unit = " (%)" if pct else ""
        lines += [f"### {task}: {group[0].split} {metric}", ""]
        if kind == "qa":
            lines += _qa_table(group, out, n_resamples)
            unit = " (%)"  # EM and F1 are percentages already
        else:
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
                  "percentile bootstrap, `nlp_ssl.metrics.bootstrap`; extractive QA: over questions); they show how "
                  "much a score would move on "
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
    plots = out / PLOTS_DIR
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
            lines.append(f"| [{t['name']}]({_rel(t['path'] / CARD_FILE, out)}) | {s.get('vocab_size', 'n/a')} | "
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
    cards = [(n, p) for n, p in cards if (p / CARD_FILE).is_file()]
    if cards:
        lines += ["## Model cards", "", "Each model directory holds its card (README.md), ready for the Hub "
                  "(`nlp-ssl push DIR --repo-id USER/NAME --dry-run` shows what would be shared):", ""]
        for n, p in cards:
            lines.append(f"- [{n}]({_rel(p / CARD_FILE, out)}): {_card_summary(p / CARD_FILE)}")
        lines.append("")
    path = out / REPORT_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
