"""Scale-out on CPU: pretraining tokens/s of 1 process vs 2 ranks on one machine vs 2 simulated machines, each
process on one thread, at the same global batch, with the communication share of a step.

Rows (the same `nlp-ssl pretrain` run, tiny BERT, same data, global batch and steps; each rank one thread):
    1 process                    `python bench_scale.py --worker` (baseline, 1.00x)
    2 ranks, 1 machine           `accelerate launch --config_file configs/accelerate/cpu-2proc.yaml`
    2 simulated machines         `accelerate launch --config_file configs/accelerate/cpu-2node.yaml --machine_rank 0|1`,
                                 two launches, rendezvous on 127.0.0.1
tokens/s is the median over logging windows after the warm-up steps (the Trainer's Throughput callback, global
tokens); a row's ratio is the median over repeats of (row / 1 process in the same repeat), rows interleaved.

Communication share of a step: before training, each multi-rank run all-reduces one float32 buffer as large as
the model's gradients (what DDP reduces each step) over the same gloo group, 20 times; share = that time / the
measured step time. DDP overlaps its bucketed all-reduce with the backward pass, so this is the cost of the
communication itself, an upper bound on what the step waits for.

Needs the prepared IMDB blocks and tokenizer (`nlp-ssl train-tokenizer configs/tokenizer/wordpiece-wiki-8k.yaml`,
`nlp-ssl prepare configs/prepare/imdb-unsup-128.yaml`), or --data/--tokenizer pointing at others (blocks of 128).

Usage:
    python benchmarks/bench_scale.py --quick        # end-to-end check (1 repeat, 6 steps): numbers are no result
    python benchmarks/bench_scale.py --repeats 3    # on an idle machine
With --quick and no --data, the blocks and tokenizer are the benchmarks' own small ones (300 Wikipedia articles).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO, interleaved, ratio, save_results, wiki_blocks

LAUNCH = {"1 process": None, "2 ranks, 1 machine": "cpu-2proc.yaml", "2 simulated machines": "cpu-2node.yaml"}


def run_config(data: str, tokenizer: str, out: str, per_device: int, steps: int, logging: int) -> dict:
    return {"output_dir": out, "data": data, "tokenizer": tokenizer,
            "model": {"arch": "bert", "preset": "tiny", "dropout": 0.0},
            "train": {"per_device_train_batch_size": per_device, "max_steps": steps, "eval_steps": 0, "save_steps": 0,
                      "logging_steps": logging, "max_eval_samples": 16, "report_to": ["none"], "warmup_ratio": 0.0},
            "impl": {"num_threads": 1}, "overwrite": True}


def worker(config_path: str, result_path: str, comm_repeats: int = 20) -> None:
    """One rank of a measured run: time the all-reduce of one step's gradients, then pretrain."""
    import torch
    import torch.distributed as dist
    import yaml
    from accelerate import PartialState

    from nlp_ssl.cli import main as cli
    from nlp_ssl.config import from_dict
    from nlp_ssl.layout import read_run
    from nlp_ssl.modeling import build_mlm_model
    from nlp_ssl.pretraining import PretrainConfig
    from nlp_ssl.tokenization import load_tokenizer

    cfg = from_dict(PretrainConfig, yaml.safe_load(Path(config_path).read_text()))
    state = PartialState(cpu=True)  # the gloo group of the launched ranks (the Trainer joins the same one)
    torch.set_num_threads(1)
    n = sum(p.numel() for p in build_mlm_model(cfg.model, load_tokenizer(cfg.tokenizer)).parameters())
    comm = None
    if state.num_processes > 1:
        grads = torch.ones(n, dtype=torch.float32)  # (parameters,): what DDP all-reduces each step
        for _ in range(3):
            dist.all_reduce(grads)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(comm_repeats):
            dist.all_reduce(grads)
        comm = (time.perf_counter() - t0) / comm_repeats
    if cli(["pretrain", config_path]):  # as `accelerate launch scripts/pretrain.py CONFIG` runs it
        raise SystemExit(f"pretraining failed on rank {state.process_index}")
    if state.is_main_process:
        run = read_run(cfg.output_dir)
        Path(result_path).write_text(json.dumps({"log": run.log_history(), "comm_seconds": comm, "parameters": n,
                                                 "world_size": run.metrics["world_size"]}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(row: str, args, work: Path) -> dict:
    """Run one row in fresh processes; returns tokens/s (median window after warm-up) and the comm share."""
    world = 1 if LAUNCH[row] is None else 2
    tag = f"{row.split()[0]}-{LAUNCH[row] or 'single'}-{time.monotonic_ns()}"
    cfg_path, result = work / f"{tag}.yaml", work / f"{tag}.json"
    import yaml

    cfg_path.write_text(yaml.safe_dump(run_config(args.data, args.tokenizer, str(work / tag), args.global_batch // world,
                                                  args.steps, args.logging_steps)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    me = [str(Path(__file__).resolve()), "--worker", str(cfg_path), str(result)]
    accelerate = str(Path(sys.executable).parent / "accelerate")
    if LAUNCH[row] is None:
        cmds = [[sys.executable, *me]]
    else:
        port = str(free_port())
        base = [accelerate, "launch", "--config_file", str(REPO / "configs/accelerate" / LAUNCH[row]),
                "--main_process_port", port]
        cmds = [base + ["--machine_rank", str(r), "--main_process_ip", "127.0.0.1", *me] for r in (0, 1)] \
            if LAUNCH[row] == "cpu-2node.yaml" else [base + me]
    procs = [subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in cmds]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"{row} failed:\n" + "\n".join(o[-3000:] for o in outs))
    r = json.loads(result.read_text())
    assert r["world_size"] == world, (row, r["world_size"])
    windows = [h["tokens_per_second"] for h in r["log"] if "tokens_per_second" in h and h["step"] > args.warmup]
    tps = statistics.median(windows)
    step_s = args.global_batch * 128 / tps
    return {"tokens_per_second": tps, "step_seconds": step_s, "comm_seconds": r["comm_seconds"],
            "comm_share": None if r["comm_seconds"] is None else r["comm_seconds"] / step_s, "parameters": r["parameters"]}


def main(argv: list[str] | None = None) -> Path | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("CONFIG", "RESULT"), help="(internal) one rank of a measured run")
    ap.add_argument("--data", default=None, help="prepared blocks of 128 (nlp-ssl prepare); default: the IMDB unsup "
                    "blocks of configs/prepare/imdb-unsup-128.yaml (--quick: the benchmarks' own small blocks)")
    ap.add_argument("--tokenizer", default=None, help="default: runs/tokenizers/wordpiece-wiki-8k (--quick: the "
                    "tokenizer of the small blocks)")
    ap.add_argument("--global-batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=10, help="steps left out of the median")
    ap.add_argument("--logging-steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 repeat, 6 steps: checks the script works (numbers are "
                    "no result; written under runs/bench/quick)")
    args = ap.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    from nlp_ssl.runinfo import RunClock

    clock = RunClock()
    if args.quick:
        args.repeats, args.steps, args.warmup, args.logging_steps, args.global_batch = 1, 6, 2, 2, 8
        if args.data is None:
            args.data = str(wiki_blocks(128, 8192, quick=True))
            from nlp_ssl.data.prepare import REPORT_FILE

            args.tokenizer = json.loads((Path(args.data) / REPORT_FILE).read_text())["tokenizer"]
    args.data = args.data or str(REPO / "runs/data/imdb-unsup-wp8k-128")
    args.tokenizer = args.tokenizer or str(REPO / "runs/tokenizers/wordpiece-wiki-8k")
    if not (Path(args.data) / "dataset_dict.json").exists():
        raise SystemExit(f"{args.data}: no prepared blocks; run nlp-ssl prepare configs/prepare/imdb-unsup-128.yaml "
                         "or pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        runs = interleaved({row: (lambda row=row: measure(row, args, Path(tmp))) for row in LAUNCH}, args.repeats,
                           show=lambda m: f"{m['tokens_per_second']:,.0f} tokens/s")
    base = [m["tokens_per_second"] for m in runs["1 process"]]
    rows = []
    for row, ms in runs.items():
        tps = [m["tokens_per_second"] for m in ms]
        shares = [m["comm_share"] for m in ms if m["comm_share"] is not None]
        comm = [m["comm_seconds"] * 1000 for m in ms if m["comm_seconds"] is not None]
        rows.append([row, 1 if LAUNCH[row] is None else 2, round(statistics.median(tps)), ratio(tps, base),
                     round(statistics.median(m["step_seconds"] for m in ms) * 1000),
                     f"{statistics.median(comm):.1f}" if comm else "-",
                     f"{100 * statistics.median(shares):.0f}%" if shares else "-"])
    params = runs["1 process"][0]["parameters"]
    title = (f"bench_scale: BERT tiny ({params / 1e6:.2f}M parameters), T=128, global batch {args.global_batch}, "
             f"{args.steps} steps (median window after {args.warmup}), {args.repeats} repeat(s), 1 thread per rank")
    headers = ["run", "ranks", "tokens/s", "vs 1 process", "step ms", "all-reduce ms", "comm share"]
    return save_results("bench_scale", title, {"scale": (headers, rows)}, clock, args.quick, args=vars(args))


if __name__ == "__main__":
    main()
