"""`nlp-ssl report` on hand-made run directories (numbers checkable by hand), and plots drawn headless."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nlp_ssl.report import find_runs, read_result, write_report

REPO = Path(__file__).resolve().parent.parent
LABELS = ["negative", "positive"]


def _dump(d: Path, name: str, data) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))


def _run(d: Path, seed: int, correct: int, n: int = 100, lr: float = 1e-3, init: str = "pretrained") -> float:
    """A fine-tuned run whose predictions-dev.jsonl gets `correct` of `n` examples right."""
    rows = [{"idx": i, "label": LABELS[i % 2],
             "prediction": LABELS[i % 2] if i < correct else LABELS[1 - i % 2]} for i in range(n)]
    d.mkdir(parents=True, exist_ok=True)
    (d / "predictions-dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    acc = correct / n
    _dump(d, "metrics.json", {"learning_rate": lr, "seed": seed, "init": init, "train_examples": 100,
                              "eval": {"dev": {"accuracy": acc}}})
    _dump(d, "run_info.json", {"command": "finetune", "labels": LABELS})
    _dump(d, "config.yaml", {"model": "enc", "init": init, "task": {"preset": "sst2", "type": "classification",
                                                                   "metrics": ["accuracy"]}})
    (d / "README.md").write_text("---\nlibrary_name: transformers\n---\n# card\n")
    return acc


def _grid(root: Path, name: str, labels: int, init: str, correct: list[int]) -> None:
    d = root / name
    runs = []
    for seed, c in enumerate(correct, start=1):
        acc = _run(d / f"lr0.001-seed{seed}", seed, c, init=init)
        runs.append({"seed": seed, "learning_rate": 0.001, "eval": {"dev": {"accuracy": acc}}})
    mean = sum(r["eval"]["dev"]["accuracy"] for r in runs) / len(runs)
    _dump(d, "metrics.json", {"task": "sst2", "init": init, "max_train_samples": labels, "seeds": [1, 2],
                              "selection": {"split": "dev", "metric": "accuracy", "grid": {"0.001": runs[0]["eval"]["dev"]["accuracy"]},
                                            "best_learning_rate": 0.001},
                              "report_split": "dev", "summary": {"dev": {"accuracy": {"mean": mean}}}, "runs": runs})
    _dump(d, "config.yaml", {"model": "enc", "init": init, "max_train_samples": labels,
                             "task": {"preset": "sst2", "type": "classification", "metrics": ["accuracy"]}})


def _pretrain(root: Path) -> None:
    d = root / "encoder"
    history = [{"loss": 7.0 - 0.01 * s, "learning_rate": 1e-3, "tokens_per_second": 5000.0, "step": s}
               for s in range(10, 310, 10)] + [{"eval_loss": 5.5, "step": 300}]
    _dump(d, "log_history.json", history)
    _dump(d, "metrics.json", {"steps": 300, "tokens_seen": 300 * 64 * 128, "train_runtime_s": 240.0,
                              "eval_loss": 5.5, "eval_perplexity": 244.7, "eval_mlm_accuracy": 0.21,
                              "tokens_per_second_mean": 5000.0})
    _dump(d, "run_info.json", {"command": "pretrain", "parameters": 1536128})


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "figures"
    _grid(root, "sst2-100-pretrained", 100, "pretrained", [70, 74])
    _grid(root, "sst2-100-scratch", 100, "scratch", [55, 57])
    _grid(root, "sst2-1000-pretrained", 1000, "pretrained", [80, 82])
    _grid(root, "sst2-1000-scratch", 1000, "scratch", [60, 64])
    _pretrain(root)
    return root


def test_report_compares_initialisations_per_label_count(tmp_path, runs):
    r = read_result(runs / "sst2-100-pretrained")
    assert (r.labels, r.init, r.mean) == (100, "pretrained", pytest.approx(0.72))
    assert r.std == pytest.approx(((0.70 - 0.72) ** 2 + (0.74 - 0.72) ** 2) ** 0.5)  # sample std over 2 seeds
    out = tmp_path / "report"
    path = write_report([runs], out, n_resamples=100)
    text = path.read_text()
    rows = [line for line in text.splitlines() if line.startswith(("| 100 |", "| 1000 |")) and "−" not in line]
    assert [row.split(" | ")[1:5] for row in rows] == [
        ["pretrained", "72.0 ± 2.8", "2", "70.0 74.0"], ["scratch", "56.0 ± 1.4", "2", "55.0 57.0"],
        ["pretrained", "81.0 ± 1.4", "2", "80.0 82.0"], ["scratch", "62.0 ± 2.8", "2", "60.0 64.0"]]
    # every seed has a bootstrap interval around its own score, about ±9 points for 100 examples at 70%
    cis = rows[0].split(" | ")[5].replace("[", "").replace("]", "").replace(",", "").split()
    lo1, hi1, lo2, hi2 = map(float, cis)
    assert lo1 < 70.0 < hi1 and lo2 < 74.0 < hi2 and 10 < hi1 - lo1 < 25
    # pretrained minus scratch: (72 - 56) = +16 points at 100 labels, paired over the same 100 examples
    diff = [line for line in text.splitlines() if "| pretrained − scratch |" in line]
    assert [d.split(" | ")[:3] for d in diff] == [["| 100", "pretrained − scratch", "+16.0"],
                                                  ["| 1000", "pretrained − scratch", "+19.0"]]
    lo, hi = (float(x) for x in diff[0].split(" | ")[3].strip("[]").split(", "))
    assert lo < 16.0 < hi and lo > 0 and diff[0].endswith("| yes |")
    for png in ("label-efficiency-sst2-accuracy.png", "pretrain-encoder/loss.png",
                "pretrain-encoder/learning_rate.png", "pretrain-encoder/throughput.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"(plots/{png})" in text
    assert "| [encoder](../figures/encoder/README.md) | 1.54M | 300 | 2,457,600 | 4.0 min | 5.50 |" in text
    assert "[sst2-100-pretrained/lr0.001-seed1](../figures/sst2-100-pretrained/lr0.001-seed1/README.md)" in text


def test_report_cli_without_bootstrap_and_errors(tmp_path, runs):
    code = ("import sys\nfrom nlp_ssl.cli import main\n"
            f"rc = main(['report', {str(runs)!r}, '--output', {str(tmp_path / 'r')!r}, '--bootstrap', '0'])\n"
            "rc2 = main(['report', sys.argv[1], '--output', sys.argv[1] + '/r'])\n"
            "print('RC', rc, rc2, 'evaluate' in sys.modules)\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run([sys.executable, "-c", code, str(empty)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "RC 0 1 False" in r.stdout, r.stdout + r.stderr  # no intervals asked: evaluate is not imported
    assert f"report written to {tmp_path / 'r' / 'report.md'}" in r.stdout
    assert "holds no finished nlp-ssl run" in r.stderr
    assert "95% CI" not in (tmp_path / "r" / "report.md").read_text()


def test_find_runs_takes_a_run_or_a_directory_of_runs(runs):
    assert find_runs([runs / "encoder"]) == [runs / "encoder"]
    assert [p.name for p in find_runs([runs])] == ["encoder", "sst2-100-pretrained", "sst2-100-scratch",
                                                   "sst2-1000-pretrained", "sst2-1000-scratch"]


def test_single_runs_are_reported_on_the_split_the_run_reports_not_the_selection_split(tmp_path):
    """A run that chose on a selection split (listed first in its eval) is shown on its report split (SST-2 dev),
    as its metrics.json says; QA likewise. Showing the selection score would be the optimistic figure."""
    cls = tmp_path / "sst2"
    _dump(cls, "metrics.json", {"learning_rate": 1e-3, "seed": 1, "init": "pretrained", "train_examples": 100,
                                "eval": {"selection": {"accuracy": 0.9}, "dev": {"accuracy": 0.7}},
                                "selection_split": "selection", "report_split": "dev"})
    _dump(cls, "run_info.json", {"command": "finetune"})
    _dump(cls, "config.yaml", {"task": {"preset": "sst2", "type": "classification", "metrics": ["accuracy"],
                                        "report_split": None}})
    r = read_result(cls)
    assert (r.split, r.seeds[0].value) == ("dev", 0.7)
    qa = tmp_path / "squad"
    _dump(qa, "metrics.json", {"learning_rate": 1e-3, "seed": 1, "init": "pretrained", "train_questions": 10,
                               "train_features": 12, "selection_split": "selection", "report_split": "dev",
                               "eval": {"selection": {"exact_match": 50.0, "f1": 60.0},
                                        "dev": {"exact_match": 20.0, "f1": 30.0}}})
    _dump(qa, "run_info.json", {"command": "finetune"})
    _dump(qa, "config.yaml", {"task": {"preset": "squad_v2", "type": "extractive_qa", "selection_split": "selection"}})
    r = read_result(qa)
    assert (r.split, r.seeds[0].value, r.extra["em"]) == ("dev", 30.0, 20.0)


def _qa_grid(root: Path, name: str, init: str, right: list[int], n: int = 20) -> None:
    """An extractive-QA grid whose seed s answers the first right[s-1] of n questions word for word, the rest with
    a wrong word; predictions-dev.jsonl rows carry each question's reference answers (what the intervals need)."""
    d = root / name
    runs = []
    for seed, k in enumerate(right, start=1):
        from nlp_ssl.squad_metrics import prediction_rows

        rows = prediction_rows({f"q{i:02d}": f"answer {i}" if i < k else "nothing" for i in range(n)},
                               {f"q{i:02d}": [f"answer {i}", f"the answer {i}"] for i in range(n)})
        cell = d / f"lr0.0001-seed{seed}"
        cell.mkdir(parents=True)
        (cell / "predictions-dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        scores = {"exact_match": 100 * k / n, "f1": 100 * k / n}
        _dump(cell, "metrics.json", {"seed": seed, "learning_rate": 1e-4, "init": init, "train_questions": 50,
                                     "train_features": 55, "eval": {"dev": scores}})
        runs.append({"seed": seed, "learning_rate": 1e-4, "eval": {"dev": scores}})
    _dump(d, "metrics.json", {"task": "squad", "init": init, "seeds": [1, 2], "report_split": "dev", "runs": runs,
                              "selection": {"split": "selection", "metric": "f1", "grid": {"0.0001": 1.0},
                                            "best_learning_rate": 1e-4}, "summary": {}})
    _dump(d, "config.yaml", {"init": init, "task": {"preset": "squad", "type": "extractive_qa"}})


def test_extractive_qa_gets_mean_std_and_intervals_over_questions(tmp_path):
    root = tmp_path / "qa"
    _qa_grid(root, "squad-pretrained", "pretrained", [15, 13])  # EM = F1 = 75, 65 %
    _qa_grid(root, "squad-scratch", "scratch", [5, 5])  # 25, 25 %
    r = read_result(root / "squad-pretrained")
    assert (r.kind, r.metric, r.labels, [s.value for s in r.seeds]) == ("qa", "f1", 50, [75.0, 65.0])
    assert r.extra["em"] == 70.0
    text = write_report([root], tmp_path / "r", n_resamples=200).read_text()
    rows = {line.split(" | ")[1]: line.split(" | ") for line in text.splitlines() if line.startswith("| 50 |")}
    assert rows["pretrained"][2:5] == ["70.00 ± 7.07", "70.00 ± 7.07", "2"]  # EM, F1 mean ± sample std, seeds
    assert rows["scratch"][2:5] == ["25.00 ± 0.00", "25.00 ± 0.00", "2"]
    # each seed's interval over the 20 questions, EM then F1 (equal here: every answer is all right or all wrong),
    # around its own score; a binomial 95% interval at 15/20 is about +-19 points
    em, f1 = rows["pretrained"][5], rows["pretrained"][6]
    assert em == f1
    lo, hi = (float(x) for x in em.split("] [")[0].strip("[]").split(", "))
    assert lo < 75.0 < hi and 25 < hi - lo < 50
    # pretrained minus scratch over the same questions: 70 - 25 = +45 points
    diff = [line for line in text.splitlines() if "| pretrained − scratch |" in line]
    assert len(diff) == 1 and diff[0].split(" | ")[2] == "+45.0" and diff[0].endswith("| yes |")


def test_a_truncated_metrics_file_is_named(tmp_path, runs):
    (runs / "sst2-100-scratch" / "metrics.json").write_text('{"task": "sst2", "runs": [')
    from nlp_ssl.errors import DataError

    with pytest.raises(DataError, match=r"sst2-100-scratch/metrics.json is not valid JSON"):
        write_report([runs], tmp_path / "r", n_resamples=0)
