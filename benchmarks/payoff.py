"""What pretraining buys: named studies, each a plan of `nlp-ssl` commands (pretraining, fine-tuning probes, zero-shot
evaluation) run stage by stage, then tabulated from the finished runs (`figures.py`) into a results JSON.

Studies (`--help` lists them; each is one function below, its docstring says what it compares): recipe,
recipe-bert-tiny, objectives, objectives-bert-tiny, objectives-wiki, spread.

How a comparison is made fair: both sides of a pair use the same config, grid, seeds and budget; rates and
checkpoints are chosen on a selection split and the reported split is never used to choose; runs that must share a
machine's load run side by side (the lanes of a stage), each on one thread. Every `nlp-ssl` command skips a
finished run of the same config, so an interrupted study continues where it stopped. Each run's metrics.json
records its provenance; the study's tables go to benchmarks/results/STUDY.json with their own.

Usage:
    python benchmarks/payoff.py recipe [--stages probes-scratch,...]   # the study (hours on 2 CPU cores)
    python benchmarks/payoff.py spread --quick                         # end-to-end check (numbers are no result)
    python benchmarks/payoff.py objectives --dry-run                   # the commands, each config checked; runs nothing
    python benchmarks/payoff.py tabulate runs/figures [--encoder DIR] [--json PATH]   # tables of finished runs
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness import CACHE, DATA_DIR, QUICK_ARTICLES, REPO, WIKI, save_results, table
from figures import encoder_record, report_scores, spread, spread_tables, tabulate

NLP = [sys.executable, "-m", "nlp_ssl"]
TOKENIZER, IMDB = "runs/tokenizers/wordpiece-wiki-8k", "runs/data/imdb-unsup-wp8k-128"
RECIPE = "configs/pretrain/modernbert-tiny-imdb-recipe-cpu.yaml"
SIMCSE = "configs/pretrain/simcse-tiny-cpu.yaml"
FEW = "configs/finetune/sst2-1000-labels-bert-tiny-cpu.yaml"  # 3 seeds, grid 1e-4, 3e-4, 1e-3
IMDB_FT = "configs/finetune/imdb-bert-tiny-cpu.yaml"
HUNDRED = ["max_train_samples=100", "train.num_train_epochs=30", "train.per_device_train_batch_size=16"]  # 100 labels
# --quick: tiny models, a few steps, a few dozen examples (appended last, so they win); budgets are the study's.
# Its outputs are scratch (runs/bench/quick): a change of these settings replaces them (overwrite).
QUICK = {"train-tokenizer": [f"data.max_examples={QUICK_ARTICLES}", "tokenizer.vocab_size=2000", "overwrite=true"],
         "prepare": ["data.max_examples=300", "overwrite=true"],  # IMDB reviews
         "pretrain": ["model.num_layers=1", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
                      "train.eval_steps=0", "train.save_steps=0", "train.max_eval_samples=16", "train.logging_steps=1",
                      "train.per_device_train_batch_size=8", "train.report_to=[none]", "overwrite=true"],
         "finetune": ["max_train_samples=32", "seed=[1,2]", "train.learning_rate=[0.001]",
                      "train.num_train_epochs=1", "train.max_steps=2", "train.extend_lr_grid=false", "save_predictions=false",
                      "overwrite=true"],
         "evaluate": []}


@dataclass
class Step:
    """One `nlp-ssl` command of a study.

    Attributes:
        name: its log's name (and its output folder's, by the plans' convention).
        argv: the command, its config file (evaluate: a model directory) and key=value overrides; with `data`,
            the command and overrides only.
        data: a config mapping instead of a file (written to OUT/configs/NAME.yaml when the step runs).
    """

    name: str
    argv: list[str]
    data: dict | None = None


@dataclass
class Stage:
    """Steps that run side by side: each lane runs its steps in order; the next stage starts when all lanes end.

    Attributes:
        name: what `--stages` selects.
        lanes: the lanes (one lane: one step after another).
    """

    name: str
    lanes: list[list[Step]]


@dataclass
class Study:
    """A plan of commands and where its runs go.

    Attributes:
        out: the folder of its runs (tabulated at the end) and logs.
        stages: run in order.
        threads: OMP_NUM_THREADS of every command (fine-tuning has no thread key, and another thread count gives
            other weights from the same seed); None: the caller's environment.
        encoder: the pretrained encoder, whose record goes into the results.
    """

    out: Path
    stages: list[Stage]
    threads: int | None = 1
    encoder: str | None = None


def nlp(name: str, *argv: str) -> Step:
    return Step(name, list(argv))


def paths(a) -> tuple[str, str, str]:
    """(runs root, tokenizer, IMDB blocks): under runs/bench/quick/STUDY for a --quick check."""
    root = f"runs/bench/quick/{a.study}" if a.quick else "runs"
    return root, f"{root}/tokenizers/wordpiece-wiki-8k", f"{root}/data/imdb-unsup-wp8k-128"


def data_stage(a, *extra: Step) -> Stage:
    root, tok, blocks = paths(a)
    return Stage("data", [[nlp("tokenizer", "train-tokenizer", "configs/tokenizer/wordpiece-wiki-8k.yaml", f"output_dir={tok}"),
                           nlp("imdb-blocks", "prepare", "configs/prepare/imdb-unsup-128.yaml", f"output_dir={blocks}",
                               f"tokenizer={tok}"), *extra]])


def arch(a, config: str = RECIPE) -> tuple[str, Step]:
    """An untrained encoder of the recipe's shape and tokenizer, for init=scratch (its one step runs at the
    warm-up's rate 0, so its weights are the random initialisation)."""
    root, tok, blocks = paths(a)
    out = f"{root}/arch/modernbert-tiny"
    return out, nlp("arch", "pretrain", config, f"output_dir={out}", f"data={blocks}", f"tokenizer={tok}",
                    "train.max_tokens=null", "train.max_steps=1", "impl.num_threads=1", "train.report_to=[]")


def quick_budget(a, *real: str) -> list[str]:
    return ["train.max_tokens=null", "train.max_time_minutes=null", "train.max_steps=3"] if a.quick else list(real)


def ft(out, name: str, config: str, *overrides: str) -> Step:
    """`nlp-ssl finetune CONFIG OVERRIDES output_dir=OUT/NAME`."""
    return nlp(name, "finetune", config, *overrides, f"output_dir={out}/{name}")


def sts(out, name: str, model: str, *overrides: str) -> Step:
    """Zero-shot STS-B of an encoder (no labels): `nlp-ssl evaluate MODEL task.type=sts_zero_shot`, into OUT/NAME."""
    return nlp(name, "evaluate", model, "task.type=sts_zero_shot", *overrides, f"output_dir={out}/{name}")


def sides(model: str, scratch_model: str | None = None) -> dict[str, list[str]]:
    """init overrides of the two sides of a pair: the encoder, and the same shape from scratch."""
    return {"pretrained": [f"model={model}", "init=pretrained"], "scratch": [f"model={scratch_model or model}", "init=scratch"]}


def recipe(a) -> Study:
    """The CPU recipe (ModernBERT tiny, masked LM on IMDB, 49.2M tokens) against scratch: SST-2 (all, 1,000), IMDB
    (1,000), SQuAD, STS-B; zero-shot STS-B ([CLS], mean) and after a SimCSE stage."""
    root, tok, blocks = paths(a)
    out, enc = Path(a.out or f"{root}/finetune/recipe"), f"{root}/pretrain/modernbert-tiny-imdb-recipe-cpu"
    scratch_model, make_arch = arch(a)
    init = sides(enc, scratch_model)
    probes = {side: [ft(out, f"{task}-{side}", f"configs/finetune/recipe/{task}.yaml", *init[side])
                     for task in ("sst2-1000", "imdb-1000", "sst2", "squad", "stsb")] for side in init}
    zero_shot = [nlp("simcse", "pretrain", SIMCSE, f"output_dir={enc}-simcse", f"data={blocks}", f"tokenizer={tok}",
                     "model.arch=modernbert", f"model.init_from={enc}", "objective.simcse.pooling=mean",
                     "train.max_time_minutes=null", *quick_budget(a, "train.max_steps=1500"), "impl.num_threads=1"),
                 sts(out, "sts-mlm-mean", enc, "task.pooling=mean"), sts(out, "sts-mlm-cls", enc, "task.pooling=cls"),
                 sts(out, "sts-simcse", f"{enc}-simcse")]
    pretrain = nlp("pretrain", "pretrain", RECIPE, f"output_dir={enc}", f"data={blocks}", f"tokenizer={tok}",
                   "impl.num_threads=1", *quick_budget(a))
    return Study(out, [data_stage(a, make_arch), Stage("pretrain+probes-scratch", [[pretrain], probes["scratch"]]),
                       Stage("probes-pretrained+zero-shot", [probes["pretrained"], zero_shot])], encoder=enc)


def recipe_bert_tiny(a) -> Study:
    """The BERT tiny token-budget encoder (or --encoder DIR) against scratch: SST-2 and IMDB at 100 / 1,000 / all
    labels, self-training on IMDB with 100 labels, SQuAD; then `nlp-ssl report`."""
    root, tok, blocks = paths(a)
    out = Path(a.out or f"{root}/figures")
    enc = a.encoder or f"{root}/pretrain/bert-tiny-imdb-tokens-cpu"
    stages = [] if a.encoder else [data_stage(a, nlp("pretrain", "pretrain", "configs/pretrain/bert-tiny-imdb-tokens-cpu.yaml",
                                                     f"output_dir={enc}", f"data={blocks}", f"tokenizer={tok}", *quick_budget(a)))]
    init = {side: [*overrides, "save_predictions=false"] for side, overrides in sides(enc).items()}
    steps = [s for side in init for s in (
        ft(out, f"sst2-100-{side}", FEW, *init[side], *HUNDRED),
        ft(out, f"sst2-1000-{side}", FEW, *init[side]),
        ft(out, f"imdb-100-{side}", IMDB_FT, *init[side], "seed=[1,2,3]", "train.learning_rate=[1e-4,3e-4,1e-3]", *HUNDRED),
        ft(out, f"imdb-1000-{side}", IMDB_FT, *init[side], "max_train_samples=1000", "seed=[1,2,3]",
           "train.learning_rate=[3e-4,1e-3]", "train.num_train_epochs=10"))]
    steps.append(ft(out, "imdb-100-self-training", "configs/finetune/imdb-100-self-training-bert-tiny-cpu.yaml",
                    f"model={enc}", "save_predictions=false"))
    steps += [ft(out, f"squad-{side}", "configs/finetune/squad-bert-tiny-cpu.yaml", *sides(enc)[side]) for side in init]
    steps += [s for side in init for s in (  # all labels: one epoch of SST-2 (grid, 3 seeds), of IMDB (one rate and seed)
        ft(out, f"sst2-all-{side}", "configs/finetune/sst2-bert-tiny-cpu.yaml", *init[side], "seed=[1,2,3]",
           "train.learning_rate=[3e-4,1e-3]", "train.num_train_epochs=1"),
        ft(out, f"imdb-all-{side}", IMDB_FT, *init[side], "seed=[1]", "train.learning_rate=[1e-3]", "train.num_train_epochs=1"))]
    report = nlp("report", "report", enc, str(out), "--output", f"{out}/report", "--title",
                 "Fine-tuning figures: pretrained vs scratch")
    # torch threads pinned (2, the figures' machine): another count gives other weights from the same seed
    return Study(out, stages + [Stage("probes", [steps]), Stage("report", [[report]])],
                 threads=int(os.environ.get("OMP_NUM_THREADS", 2)), encoder=enc)


def objectives(a) -> Study:
    """Every pretext task on the recipe's ModernBERT, --minutes (25) each, two side by side; SST-2 at 100 and
    1,000 labels, zero-shot STS-B; a SimCSE stage after token masking and after ELECTRA."""
    root, tok, blocks = paths(a)
    out = Path(a.out or f"{root}/objectives")
    scratch_model, make_arch = arch(a)
    ws, docs = f"{blocks}-ws", f"{blocks}-docs"
    prep = [nlp(f"imdb-blocks-{kind}", "prepare", "configs/prepare/imdb-unsup-128.yaml", f"output_dir={blocks}-{kind}",
                f"tokenizer={tok}", setting) for kind, setting in (("ws", "word_starts=true"), ("docs", "layout=documents"))]
    budget = ["train.max_tokens=null", f"train.max_time_minutes={a.minutes or 25}", "train.eval_steps=0",
              "train.save_steps=500", "impl.num_threads=1"] + quick_budget(a)

    def run(name: str, config: str, *overrides: str) -> list[Step]:
        return [nlp(name, "pretrain", config, f"output_dir={out}/{name}", f"data={blocks}", f"tokenizer={tok}", *budget,
                    *overrides)]

    def probes(name: str) -> list[Step]:
        model = scratch_model if name == "scratch" else f"{out}/{name}"
        init = [f"model={model}", f"init={'scratch' if name == 'scratch' else 'pretrained'}"]
        return [ft(out, f"sst2-1000-{name}", "configs/finetune/recipe/sst2-1000.yaml", *init),
                ft(out, f"sst2-100-{name}", "configs/finetune/recipe/sst2-1000.yaml", *init, *HUNDRED),
                # zero-shot STS for scratch too: mean-pooled states of an untrained encoder already rank pairs
                sts(out, f"sts-{name}", model, "task.pooling=mean")]

    def simcse(name: str) -> list[Step]:  # review-sized units: one review per document block, cut to 32 tokens
        return [nlp(f"{name}-simcse", "pretrain", SIMCSE, f"output_dir={out}/{name}-simcse", "model.arch=modernbert",
                    f"model.init_from={out}/{name}", f"data={docs}", f"tokenizer={tok}", "objective.simcse.pooling=mean",
                    "objective.simcse.max_length=32", "train.max_time_minutes=null",
                    *quick_budget(a, "train.max_steps=800"), "impl.num_threads=1", "train.report_to=[]"),
                sts(out, f"sts-{name}-simcse", f"{out}/{name}-simcse")]

    return Study(out, [
        data_stage(a, make_arch, *prep),
        Stage("pair1", [run("mlm-token", RECIPE), run("mlm-wwm", RECIPE, f"data={ws}", "objective.masking.strategy=whole_word")]),
        # ELECTRA's partner does token masking's work per step: compare their tokens/s to see pair 2's load
        Stage("pair2", [run("mlm-span", RECIPE, "objective.masking.strategy=span"),
                        run("electra", "configs/pretrain/electra-modernbert-tiny-imdb-cpu.yaml")]),
        # mlm-docs is mlm-sop's control: the same document blocks without the order loss
        Stage("pair3", [run("mlm-docs", RECIPE, f"data={docs}"),
                        run("mlm-sop", RECIPE, f"data={docs}", "objective.sentence_order=true")]),
        Stage("probes", [[s for n in ("scratch", "mlm-token", "mlm-wwm", "mlm-span") for s in probes(n)],
                         [s for n in ("electra", "mlm-docs", "mlm-sop") for s in probes(n)]]),
        Stage("simcse", [simcse("mlm-token"), simcse("electra")])])


def objectives_bert_tiny(a) -> Study:
    """Masked LM against ELECTRA on post-norm BERT tiny, --minutes (55) each, side by side; SST-2 at 100 / 1,000,
    IMDB at 1,000, zero-shot STS-B."""
    root, tok, blocks = paths(a)
    out = Path(a.out or f"{root}/objectives-side-by-side")
    common = [f"data={blocks}", f"tokenizer={tok}", f"train.max_time_minutes={a.minutes or 55}", "impl.num_threads=1",
              "train.report_to=[none]", "train.save_steps=1000", "train.eval_steps=1000", *quick_budget(a)]
    pretrain = Stage("pretrain", [[nlp(name, "pretrain", config, f"output_dir={out}/{name}", *common)] for name, config in
                                  (("mlm", "configs/pretrain/bert-tiny-imdb-cpu.yaml"), ("electra", "configs/pretrain/electra-tiny-cpu.yaml"))])
    probes, imdb = [], []
    for enc in ("mlm", "electra", "scratch"):
        init = sides(f"{out}/{enc}", f"{out}/mlm")["scratch" if enc == "scratch" else "pretrained"]
        init += ["save_predictions=false", "train.extend_lr_grid=true"]
        probes += [ft(out, f"sst2-1000-{enc}", FEW, *init), ft(out, f"sst2-100-{enc}", FEW, *init, *HUNDRED)]
        if enc != "scratch":
            probes.append(sts(out, f"sts-{enc}", f"{out}/{enc}"))
        imdb.append(ft(out, f"imdb-1000-{enc}", IMDB_FT, *init, "max_train_samples=1000", "seed=[1,2,3]",
                       "train.learning_rate=[3e-4,1e-3]", "train.num_train_epochs=10"))
    return Study(out, [data_stage(a), pretrain, Stage("probes", [probes + imdb])], threads=None)


WIKI_OBJECTIVES = {
    "mlm": {"task": "mlm"},
    "clm": {"task": "clm"},
    "electra": {"task": "electra", "electra": {"generator_width": 0.25, "loss_weight": 50.0}},
    "mlm_docs": {"task": "mlm"},  # mlm_sop's control: the same document-layout blocks without the order loss
    "mlm_sop": {"task": "mlm", "sentence_order": True},
    "simcse": {"task": "simcse", "simcse": {"max_length": 64, "pooling": "cls_mlp", "temperature": 0.05}},
}
CAUSAL = {"clm"}  # its encoder keeps is_decoder: [CLS] attends to itself alone, so no [CLS] probes
DOCUMENTS = {"mlm_docs", "mlm_sop"}


def objectives_wiki(a) -> Study:
    """mlm, clm, electra, mlm_docs, mlm_sop, simcse (after mlm) on Wikipedia shard 00, --minutes (20) each; zero-shot
    STS-B, and with --sst2-steps N a short SST-2 fine-tune."""
    out = Path(a.out or (f"runs/bench/quick/{a.study}" if a.quick else f"runs/objectives-wiki-{a.preset}-{a.minutes or 20:g}min"))
    variants = [v for v in a.variants.split(",") if v]
    unknown = set(variants) - set(WIKI_OBJECTIVES)
    if unknown:
        raise SystemExit(f"--variants: unknown {sorted(unknown)}; choose from {', '.join(WIKI_OBJECTIVES)}")
    if "simcse" in variants and "mlm" not in variants:
        raise SystemExit("--variants: simcse starts from the mlm encoder; add mlm")
    variants.sort(key=list(WIKI_OBJECTIVES).index)  # mlm before simcse
    docs = a.docs or (QUICK_ARTICLES if a.quick else None)
    tok = str(CACHE / ("tokenizer-wordpiece-8192" + (f"-first{docs}" if docs else "")))
    blocks = {layout: str(CACHE / f"blocks-wiki00-{layout}-128-{docs or 'all'}") for layout in ("stream", "documents")}
    data = [Step("tokenizer", ["train-tokenizer"], {"output_dir": tok, "tokenizer": {"vocab_size": 8192},
                                                    "data": {"path": WIKI[0], "max_examples": docs}})]
    data += [Step(f"blocks-{layout}", ["prepare"], {"output_dir": path, "tokenizer": tok, "block_size": 128,
                                                     "data": {"path": WIKI[0], "max_examples": docs}, "layout": layout,
                                                     "validation_fraction": 0.02, "progress": False})
             for layout, path in blocks.items() if layout == "stream" or DOCUMENTS & set(variants)]
    steps = []
    for name in variants:
        steps.append(Step(name, ["pretrain"] + QUICK["pretrain"] * a.quick + quick_budget(a), {
            "output_dir": f"{out}/{name}", "data": blocks["documents" if name in DOCUMENTS else "stream"],
            "model": {"arch": "bert", "preset": a.preset, "sparse_prediction": name != "clm",
                      "init_from": f"{out}/mlm" if name == "simcse" else None},
            "objective": WIKI_OBJECTIVES[name], "overwrite": True,
            "train": {"per_device_train_batch_size": 64, "learning_rate": 1e-3, "warmup_ratio": 0.06,
                      "max_time_minutes": a.minutes or 20, "eval_steps": 0, "save_steps": 0, "max_eval_samples": 1000,
                      "logging_steps": 10, "report_to": ["none"], "seed": 0, "bf16": a.bf16}}))
        for pooling in ("mean",) if name in CAUSAL else ("cls", "mean"):
            steps.append(sts(out, f"sts-{pooling}-{name}", f"{out}/{name}", f"task.pooling={pooling}"))
        if a.sst2_steps and name not in CAUSAL:  # the classifier would read that [CLS]
            steps.append(Step(f"sst2-{name}", ["finetune"], {
                "output_dir": f"{out}/sst2-{name}", "model": f"{out}/{name}", "overwrite": True, "save_predictions": False,
                "task": {"preset": "sst2", "max_length": 64},
                "train": {"learning_rate": [1e-3], "per_device_train_batch_size": 32, "layer_lr_decay": 0.8,
                          "warmup_ratio": 0.1, "logging_steps": 1000, "max_steps": a.sst2_steps}}))
    return Study(out, [Stage("data", [data]), Stage("variants", [steps])], threads=None)


SPREAD_TASKS = {  # task -> (fine-tuning config, overrides): the 100-label protocol is 30 epochs of batch 16
    "sst2-100": (FEW, HUNDRED), "sst2-1000": (FEW, []), "imdb-100": (IMDB_FT, HUNDRED)}


def spread_study(a) -> Study:
    """One pretraining config, several seeds, under a token and under a time budget, each encoder fine-tuned with
    the same seeds beside scratch: do pretrained vs scratch (and token vs time) exceed the spread?"""
    root, tok, blocks = paths(a)
    out = Path(a.out or f"{root}/spread")
    data, tok = (a.data or blocks), (a.tokenizer or tok)
    max_tokens = a.max_tokens or (24 * 8 * 128 if a.quick else 600 * 16 * 128)
    minutes = a.minutes or (0.05 if a.quick else 4.0)
    common = [f"data={data}", f"tokenizer={tok}", f"train.per_device_train_batch_size={a.batch}",
              f"impl.num_threads={a.threads}", "train.report_to=[none]", "train.eval_steps=0", "train.save_steps=0",
              "train.max_eval_samples=500", "train.max_steps=-1", "train.num_train_epochs=null"]
    budget_keys = {"tokens": [f"train.max_tokens={max_tokens}", "train.max_time_minutes=null"],
                   "time": ["train.max_tokens=null", f"train.max_time_minutes={minutes}"]}
    encoders = [f"{b}-seed{s}" for b in a.budgets.split(",") for s in a.pretrain_seeds.split(",")]
    pretrain = [nlp(name, "pretrain", a.config, f"output_dir={out}/pretrain/{name}", f"train.seed={name.split('seed')[1]}",
                    *common, *budget_keys[name.split("-")[0]]) for name in encoders]
    probes = []
    for task in a.tasks.split(","):
        config, overrides = SPREAD_TASKS[task]
        # scratch: the architecture and tokenizer of an encoder, its weights drawn from the fine-tuning seed
        sides = [("scratch", f"{out}/pretrain/{encoders[0]}", "scratch", a.lr_scratch)]
        sides += [(f"{name}-lr{a.lr_pretrained:g}", f"{out}/pretrain/{name}", "pretrained", a.lr_pretrained) for name in encoders]
        probes += [nlp(f"{task}/{name}", "finetune", config, f"model={enc}", f"init={init}", f"output_dir={out}/finetune/{task}/{name}",
                       f"seed=[{a.finetune_seeds}]", f"train.learning_rate=[{lr}]", "save_predictions=false", *overrides)
                   for name, enc, init, lr in sides]
    return Study(out, [data_stage(a)] * (not a.data) + [Stage("pretrain", [pretrain]), Stage("probes", [probes])],
                 threads=a.threads)


STUDIES = {"recipe": recipe, "recipe-bert-tiny": recipe_bert_tiny, "objectives": objectives,
           "objectives-bert-tiny": objectives_bert_tiny, "objectives-wiki": objectives_wiki, "spread": spread_study}


# ---------------------------------------------------------------------------------------------------------------
# Running a study

def quick_overrides(step: Step, quick: bool) -> list[str]:
    """A --quick check's overrides of a step (a config mapping is built small already)."""
    return QUICK.get(step.argv[0], []) if quick and step.data is None else []


def command(step: Step, quick: bool, out: Path) -> list[str]:
    """The `nlp-ssl` arguments of a step (a config mapping is written to OUT/configs/NAME.yaml first)."""
    argv = list(step.argv)
    if step.data is not None:
        import yaml

        path = out / "configs" / f"{step.name.replace('/', '-')}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(step.data, sort_keys=False))
        argv.insert(1, str(path))
    return argv + quick_overrides(step, quick)


def check(step: Step, quick: bool) -> str | None:
    """The problems of a step's config (every key, as `nlp-ssl CMD --print-config` checks them), or None."""
    from nlp_ssl.cli import COMMANDS, build_config
    from nlp_ssl.config import apply_overrides, read_config

    if step.argv[0] not in COMMANDS:
        return None  # report: flags, no config
    head = step.argv[1:2] if step.data is None else []
    overrides = step.argv[1 + len(head):] + quick_overrides(step, quick)
    try:
        if step.data is not None:
            data = step.data
        elif step.argv[0] == "evaluate":
            data = {"model": head[0]}
        else:
            data = read_config(str(REPO / head[0]))
        build_config(step.argv[0], apply_overrides(data, overrides))
    except Exception as e:  # a config problem of any kind is what this reports
        return f"{step.name}: {type(e).__name__}: {e}"
    return None


def execute(step: Step, study: Study, quick: bool, log_dir: Path) -> None:
    argv = command(step, quick, study.out)
    log_path = log_dir / f"{step.name.replace('/', '-')}.log"
    env = {"NLP_SSL_DATA_DIR": str(DATA_DIR), "NLP_SSL_PROGRESS": "lines", "TQDM_DISABLE": "1",
           "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", **({"OMP_NUM_THREADS": str(study.threads)} if study.threads else {})}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"$ nlp-ssl {' '.join(argv)}   # {time.strftime('%H:%M:%S')} load {load}, log {log_path}", flush=True)
    with open(log_path, "a") as log:
        log.write(f"\n$ nlp-ssl {' '.join(argv)}\n# {time.strftime('%H:%M:%S')} load {load}\n")
        log.flush()
        if quick:  # in this process: a check in seconds, not minutes of interpreter starts
            from nlp_ssl.cli import main as cli

            os.environ.update(env)
            cwd = os.getcwd()  # the plans' paths are the repository's (contextlib.chdir needs Python 3.11)
            os.chdir(REPO)
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    code = cli(argv)
            finally:
                os.chdir(cwd)
        else:
            code = subprocess.run(NLP + argv, cwd=REPO, env={**os.environ, **env}, stdout=log,
                                  stderr=subprocess.STDOUT).returncode
    if code:
        raise SystemExit(f"{step.name} failed (exit {code}): see {log_path}")


def run_study(study: Study, stages: list[str] | None, quick: bool) -> None:
    """Run the chosen stages in order, the lanes of a stage side by side (a --quick check runs them one by one)."""
    log_dir = study.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for stage in study.stages:
        if stages and stage.name not in stages:
            continue
        print(f"== stage {stage.name}: {len(stage.lanes)} lane(s)", flush=True)
        errors: list[BaseException] = []

        def lane(steps: list[Step]) -> None:
            try:
                for step in steps:
                    execute(step, study, quick, log_dir)
            except BaseException as e:  # a failed lane lets the others finish, then the stage fails
                errors.append(e)

        if quick or len(stage.lanes) == 1:
            for steps in stage.lanes:
                lane(steps)
        else:
            threads = [threading.Thread(target=lane, args=(steps,)) for steps in stage.lanes]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise SystemExit("\n".join(str(e) for e in errors))


def spread_figures(study: Study) -> tuple[dict, dict]:
    """The spread study's encoders and per-task scores, read from the runs its plan names (not whatever else a
    reused folder holds)."""
    from nlp_ssl.layout import read_run

    steps = {stage.name: [s.name for lane in stage.lanes for s in lane] for stage in study.stages}
    encoders = {}
    for name in steps["pretrain"]:
        m = read_run(study.out / "pretrain" / name).metrics
        prov = m.get("provenance", {}).get("machine", {})
        encoders[name] = {"dir": str(study.out / "pretrain" / name), "budget": name.split("-")[0],
                          "seed": int(name.split("seed")[1]), "steps": m["steps"], "tokens_seen": m["tokens_seen"],
                          "eval_loss": m.get("eval_loss", float("nan")), "minutes": m["train_runtime_s"] / 60,
                          "load_start": prov.get("load_average_start") or [float("nan")],
                          "load_end": prov.get("load_average_end") or [float("nan")]}
    scores: dict[str, dict[str, list[float]]] = {}
    for probe in steps["probes"]:  # TASK/scratch, TASK/ENCODER-lrRATE
        task, run = probe.split("/")
        scores.setdefault(task, {})[run.rsplit("-lr", 1)[0]] = report_scores(read_run(study.out / "finetune" / probe).metrics)
    return encoders, spread(encoders, scores)


def main(argv: list[str] | None = None) -> int:
    studies = "\n".join(f"  {name:22s}{(fn.__doc__ or '').split(chr(10))[0]}" for name, fn in STUDIES.items())
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="studies:\n" + studies,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", choices=[*STUDIES, "tabulate"])
    p.add_argument("root", nargs="?", help="tabulate: the folder of finished runs")
    p.add_argument("--out", help="the study's folder of runs (default: per study, under runs/)")
    p.add_argument("--stages", help="run only these stages (comma-separated; --dry-run lists them)")
    p.add_argument("--dry-run", action="store_true", help="print every command and check its config; run nothing")
    p.add_argument("--tabulate-only", action="store_true", help="run nothing: tabulate the study's finished runs")
    p.add_argument("--quick", action="store_true", help="end-to-end check: tiny models, a few steps and examples, "
                   "runs under runs/bench/quick (numbers are no result)")
    p.add_argument("--encoder", help="recipe-bert-tiny: an encoder to probe instead of building one; tabulate: recorded")
    p.add_argument("--json", help="tabulate: also write the tables and every run's provenance here")
    p.add_argument("--minutes", type=float, help="objectives*: pretraining wall clock per run; spread: the time budget")
    g = p.add_argument_group("objectives-wiki")
    g.add_argument("--variants", default=",".join(WIKI_OBJECTIVES))
    g.add_argument("--preset", default="tiny")
    g.add_argument("--docs", type=int, help="only the first N articles of shard 00")
    g.add_argument("--sst2-steps", type=int, default=0, help="SST-2 fine-tuning steps per encoder (0: none)")
    g.add_argument("--bf16", action="store_true")
    g = p.add_argument_group("spread")
    g.add_argument("--config", default="configs/pretrain/bert-tiny-imdb-tokens-cpu.yaml", help="pretraining config")
    g.add_argument("--data", help="prepared blocks (default: the IMDB blocks)")
    g.add_argument("--tokenizer")
    g.add_argument("--batch", type=int, default=16, help="pretraining blocks per step")
    g.add_argument("--max-tokens", type=int, help="token budget (default 600 steps of 16 x 128)")
    g.add_argument("--pretrain-seeds", default="1,2,3")
    g.add_argument("--finetune-seeds", default="1,2,3")
    g.add_argument("--tasks", default="sst2-100", help=f"comma-separated, of {sorted(SPREAD_TASKS)}")
    g.add_argument("--lr-pretrained", type=float, default=1e-3, help="fine-tuning rate of pretrained encoders")
    g.add_argument("--lr-scratch", type=float, default=1e-3, help="fine-tuning rate from scratch")
    g.add_argument("--threads", type=int, default=1, help="torch threads of every command (on a shared machine 1)")
    g.add_argument("--budgets", default="tokens,time", help="tokens, time or both")
    a = p.parse_args(argv)
    for key in ("out", "root", "encoder", "json", "data", "tokenizer"):  # as given, from where the caller stands
        if getattr(a, key):
            setattr(a, key, str(Path(getattr(a, key)).resolve()))
    if a.study == "tabulate":
        return tabulate_command(a)
    if a.quick and a.study == "spread":
        a.batch, a.pretrain_seeds, a.finetune_seeds = 8, "1,2", "1,2"
    study = STUDIES[a.study](a)
    study.out = REPO / study.out  # the plans' paths (configs/, runs/) are the repository's, as in its configs
    if a.dry_run:
        problems = []
        for stage in study.stages:
            print(f"== stage {stage.name}")
            for i, lane in enumerate(stage.lanes):
                for step in lane:
                    print(f"  lane {i + 1}: nlp-ssl {' '.join(step.argv)}" + (" CONFIG(mapping)" if step.data else ""))
                    problems += [x for x in [check(step, a.quick)] if x]
        print("\n".join(problems) or "every config checked")
        return 1 if problems else 0
    from nlp_ssl.runinfo import RunClock

    clock = RunClock()
    if not a.tabulate_only:
        run_study(study, a.stages.split(",") if a.stages else None, a.quick)
    extra = {}
    if a.study == "spread":
        encoders, summary = spread_figures(study)
        tables, refused, extra = spread_tables(encoders, summary), [], {"encoders": encoders, "spread": summary}
    else:
        tables, refused, runs = tabulate(study.out)
        enc = REPO / study.encoder if study.encoder else None
        extra = {"runs": runs, "encoder": encoder_record(enc) if enc and enc.is_dir() else None}
    save_results(a.study, f"payoff study {a.study}: {study.out}", tables, clock, a.quick, out=str(study.out),
                 refused=refused, **extra)
    return refusals(refused)


def tabulate_command(a) -> int:
    """Tables of the finished runs under a folder (what a study writes at its end, for any folder of runs)."""
    if not a.root:
        raise SystemExit("tabulate: give the folder of finished runs, e.g. payoff.py tabulate runs/figures")
    tables, refused, runs = tabulate(a.root)
    if a.json:
        save_results("tabulate", f"finished runs under {a.root}", tables, path=Path(a.json), runs=runs,
                     refused=refused, encoder=encoder_record(a.encoder) if a.encoder else None)
    else:
        print("\n\n".join(table(h, rows) for h, rows in tables.values()))
    return refusals(refused)


def refusals(refused: list[str]) -> int:
    """Pairs named alike but set up differently are refused: said, and the exit status says so."""
    if refused:
        print("\n".join(refused), file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
