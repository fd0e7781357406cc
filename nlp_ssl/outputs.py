"""Output-directory policy shared by the commands: is `output_dir` free, the same run finished (nothing to do), the
same run unfinished (resume), or another run (refused unless asked to overwrite)? Also small atomic writes, and
where each rank writes under `accelerate launch` (`main_process_output`: the main process builds the run directory,
the others write into scratch space).

A run's identity is its resolved config without the keys that only say where it is written or shared, or how to
treat an existing directory (`output_dir`, `hub`, `overwrite`, `resume`), so a moved run still resumes.

Example:
    >>> action = check_output_dir(cfg)                    # "start" | "resume" | "done"
    >>> action, ckpt = check_resumable_output_dir(cfg)    # pretraining: also the checkpoint to resume from
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from nlp_ssl.config import from_dict, migrate, read_yaml, to_dict
from nlp_ssl.errors import OutputError
from nlp_ssl.layout import (CHECKPOINTS_DIR, CONFIG_FILE, LOG_HISTORY_FILE, METRICS_FILE,  # noqa: F401  (re-exported)
                            TENSORBOARD_DIR, read_json)


def comparable_config(cfg_dict: dict) -> dict:
    """A config (as a dict) without the keys that may differ between a run and its continuation."""
    out = json.loads(json.dumps(cfg_dict, default=str))
    out.pop("output_dir", None)
    out.pop("overwrite", None)
    out.pop("hub", None)  # where the model is shared does not change it
    for key in ("resume", "overwrite"):
        if isinstance(out.get("train"), dict):
            out["train"].pop(key, None)
    return out


def _same_config(saved: Path, cfg: Any) -> bool:
    """Whether `saved` (a config.yaml) holds the same run as `cfg`; read through the config class, so keys
    that were added with defaults since the run was written compare equal."""
    if not saved.exists():
        return False
    return _single_values(_saved_config(saved, cfg)) == _single_values(comparable_config(to_dict(cfg)))


def _single_values(cfg_dict: dict | None) -> dict | None:
    """Fine-tuning's `seed` and `train.learning_rate` with a list of one read as that one value: the same single
    run (runs written before the renames recorded `seeds: [s]`, `learning_rates: [r]`; today's as the config
    gives them)."""
    if not isinstance(cfg_dict, dict):
        return cfg_dict
    out = dict(cfg_dict)
    if isinstance(out.get("seed"), list) and len(out["seed"]) == 1:
        out["seed"] = out["seed"][0]
    train = out.get("train")
    if isinstance(train, dict) and isinstance(train.get("learning_rate"), list) and len(train["learning_rate"]) == 1:
        out["train"] = {**train, "learning_rate": train["learning_rate"][0]}
    return out


def _saved_config(saved: Path, cfg: Any) -> dict | None:
    """The comparable form of a run's config.yaml read through `cfg`'s class: keys renamed since it was written
    are migrated (`config.migrate`), keys added since take their defaults; None when it no longer loads."""
    from nlp_ssl.errors import ConfigError

    try:
        return comparable_config(to_dict(from_dict(type(cfg), migrate(type(cfg), read_yaml(saved)), str(saved))))
    except ConfigError:
        return None


def check_output_dir(cfg: Any, command: str = "finetune") -> str:
    """`start`, `resume` (same config, unfinished runs left) or `done` (same config, finished).

    `cfg` has `output_dir`, `overwrite`, `model` and `tokenizer`. A directory holding another run, another
    command's output, or the run's own inputs is refused (`atomic.check_output_target`, `refuse_input_overlap`).

    Raises:
        OutputError: `output_dir` holds another run and `overwrite` is false.
    """
    from nlp_ssl.atomic import check_output_target, refuse_input_overlap

    out = Path(cfg.output_dir)
    refuse_input_overlap(out, {"model": cfg.model, "tokenizer": cfg.tokenizer})
    check_output_target(out, command, cfg.overwrite)
    if not out.exists() or not any(out.iterdir()) or cfg.overwrite:
        return "start"
    if _same_config(out / CONFIG_FILE, cfg):
        return "done" if (out / METRICS_FILE).exists() else "resume"
    raise OutputError(f"{out} already holds another run; set overwrite=true to replace it, or choose another output_dir")


def check_resumable_output_dir(cfg: Any, command: str = "pretrain") -> tuple[str, str | None]:
    """Pretraining's policy: ("start", None), ("resume", last complete checkpoint) or ("done", None).

    `cfg` has `output_dir`, `data`, `tokenizer`, `model.init_from`, `train.resume` and `overwrite`;
    checkpoints live in `output_dir/checkpoints`.
    A finished run (its completeness marker, `atomic.is_complete`) of the same config is "done"; a directory
    holding another run is refused unless the config asks to resume it (same config) or to overwrite it.
    """
    from nlp_ssl.atomic import check_output_target, is_complete, refuse_input_overlap
    from nlp_ssl.checkpoints import last_complete_checkpoint

    out = Path(cfg.output_dir)
    refuse_input_overlap(out, {"data": cfg.data, "tokenizer": cfg.tokenizer,
                               "model.init_from": getattr(cfg.model, "init_from", None)})
    check_output_target(out, command, cfg.overwrite)
    if not out.exists() or not any(out.iterdir()):
        if cfg.train.resume:
            raise OutputError(f"train.resume: {out} holds no run to resume; set train.resume=false to start one")
        return "start", None
    if cfg.overwrite:
        return "start", None
    saved = out / CONFIG_FILE
    same = saved.exists() and _saved_config(saved, cfg) == comparable_config(to_dict(cfg))
    if same and is_complete(out):
        return "done", None
    if not cfg.train.resume:
        raise OutputError(f"{out} already holds a run; set train.resume=true to continue it, overwrite=true "
                          "to start over, or choose another output_dir")
    if not saved.exists():
        raise OutputError(f"train.resume: {out} holds files but no {CONFIG_FILE} of an nlp-ssl run; choose another "
                          "output_dir")
    if not same:
        raise OutputError(f"train.resume: the config differs from the one {out} was trained with ({saved}); "
                          "resume with the same config, or set overwrite=true to start over")
    last = last_complete_checkpoint(out / CHECKPOINTS_DIR)
    if last is None:  # stopped before its first complete checkpoint: nothing to keep, start again
        print(f"{out} holds this run but no complete checkpoint yet; starting it from step 0")
        return "start", None
    return "resume", last


def read_metrics(out: str | Path) -> dict[str, Any]:
    """A run's metrics.json (an error naming the file when it is missing, truncated or not JSON)."""
    return read_json(Path(out) / METRICS_FILE)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader sees the old file or the complete new one, never a part."""
    from nlp_ssl.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, default=float) + "\n")


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    """One JSON object per line, written atomically."""
    from nlp_ssl.atomic import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def clear_for_start(out: Path, overwrite: bool) -> None:
    """On the main process, remove an output_dir that `overwrite` replaces. Every rank has checked the directory
    before it is removed, and waits until it is."""
    from nlp_ssl.distributed import is_main_process, wait_for_everyone

    wait_for_everyone()
    if overwrite and out.exists() and is_main_process():
        shutil.rmtree(out)
    wait_for_everyone()


@contextlib.contextmanager
def main_process_output(final: str | Path) -> Iterator[Path]:
    """Where a run writes its files: on the main process a temporary directory that replaces `final` when the
    block succeeds (`atomic.atomic_dir`); on the other ranks a scratch directory that is thrown away. All
    ranks meet after the block, so no rank reads `final` before it is complete."""
    from nlp_ssl.atomic import atomic_dir
    from nlp_ssl.distributed import is_main_process, wait_for_everyone

    if is_main_process():
        with atomic_dir(final) as tmp:
            yield tmp
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
    wait_for_everyone()


def save_model_dir(out: Path, model, tokenizer, metrics: dict[str, Any]) -> None:
    """A standard model directory: weights + config (with label names), tokenizer, metrics.json."""
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")


def keep_training_logs(work_dir: str | Path, out: Path, log_history: list[dict]) -> None:
    """Keep what the Trainer logged in its scratch `work_dir`: `log_history.json` and, when TensorBoard logging is
    on (`train.report_to: [tensorboard]`), its event files under `out/tensorboard/`."""
    (out / LOG_HISTORY_FILE).write_text(json.dumps(log_history, indent=1) + "\n")
    runs = Path(work_dir) / "runs"  # the Trainer's default TensorBoard directory under its output_dir
    if runs.is_dir():
        shutil.copytree(runs, out / TENSORBOARD_DIR, dirs_exist_ok=True)
