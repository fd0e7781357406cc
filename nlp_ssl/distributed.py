"""Scale-out helpers on top of `accelerate`: the FSDP wrap unit derived from the model, the collective gather of
full weights for the final save, and prediction sharded across ranks and gathered back in dataset order.

`accelerate launch` (torchrun, FSDP, DeepSpeed) does the distribution; what is here is only what it leaves to
the caller:

- FSDP shards each *transformer block* as one unit (`TRANSFORMER_BASED_WRAP`); which class that is depends on
  the architecture (`BertLayer`, `RobertaLayer`, `ModernBertEncoderLayer`, `ElectraLayer`), so it is read off
  the model (`fsdp_layer_classes`) instead of being written into the accelerate config.
- Under FSDP (or DeepSpeed ZeRO-3) no rank holds the whole model: saving it needs a gather in which *every* rank
  takes part (`gather_full_state_dict`); a save entered by rank 0 alone would wait forever, or (FSDP's sharded
  state-dict type) write no weights at all.
- `predict` loops (fine-tuning evaluation) are our own, not the Trainer's, so sharding them is ours too
  (`shard_of`, `gather_rows`).

Example:
    >>> fsdp_layer_classes(BertForMaskedLM(BertConfig(num_hidden_layers=2)))
    ['BertLayer']
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def fsdp_layer_classes(model) -> list[str]:
    """Class names of the model's repeated transformer blocks: what FSDP wraps as one shard unit each.

    The blocks are the elements of a `ModuleList` whose elements all share one class (`encoder.layer`,
    `layers`); a class the architecture itself declares unsplittable (`_no_split_modules`) comes first. Wrappers
    of several models (ELECTRA's generator + discriminator) give the blocks of each, once.

    Example:
        >>> fsdp_layer_classes(RobertaForMaskedLM(RobertaConfig(num_hidden_layers=2)))
        ['RobertaLayer']
    """
    import torch.nn as nn

    declared: set[str] = set()
    repeated: list[str] = []
    for module in model.modules():
        declared.update(getattr(module, "_no_split_modules", None) or ())
        if isinstance(module, nn.ModuleList) and len(module) and len({type(m) for m in module}) == 1:
            name = type(module[0]).__name__
            if name not in repeated:
                repeated.append(name)
    return sorted(repeated, key=lambda n: n not in declared)


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the process group this process is in; (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def process_state():
    """accelerate's `PartialState`, joined as the Trainer joins it: over gloo on a machine without GPUs.

    Under `accelerate launch` this is the ranks' process group; started plainly, one process. `PartialState()`
    with its default `cpu=False` on a CPU machine would make a launched rank a lone process (world size 1), and
    being a singleton, keep it so for the Trainer too.
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def join_process_group() -> tuple[int, int]:
    """(rank, world size), after joining the launched ranks' process group (a no-op without `accelerate launch`,
    which sets LOCAL_RANK). Commands that run no Trainer (`evaluate`) call it so that their prediction is sharded."""
    if "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        process_state()
    return distributed_world()


def is_main_process() -> bool:
    """True on the process that writes outputs (rank 0 under `accelerate launch`, or the only process)."""
    return process_state().is_main_process


def wait_for_everyone() -> None:
    """Collective: returns once every rank has reached it (at once without a process group)."""
    process_state().wait_for_everyone()


def fsdp_requested() -> bool:
    """True when `accelerate launch` was given an FSDP config (it exports ACCELERATE_USE_FSDP to every rank)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def configure_sharding(trainer, log=print) -> str:
    """Adapt a freshly built Trainer to the sharding it runs under, before it prepares the model; returns what
    it runs under (`fsdp`, `deepspeed`, `ddp` or `single`).

    - FSDP with a transformer-based wrap and no layer class named in the accelerate config: the model's own block
      class (`fsdp_layer_classes`). A class named there that the model lacks is an error naming the right one.
    - FSDP requested but not enabled (accelerate 1.x turns FSDP on only for GPU-type process groups; on CPU the
      ranks run as plain DDP, every rank holding the whole model): said once, so nobody counts on sharding that
      is not there.
    """
    from nlp_ssl.errors import ConfigError

    model = trainer.model
    if getattr(trainer, "is_deepspeed_enabled", False):
        return "deepspeed"
    if getattr(trainer, "is_fsdp_enabled", False):
        plugin = trainer.accelerator.state.fsdp_plugin
        policy = getattr(plugin.auto_wrap_policy, "func", plugin.auto_wrap_policy)
        if getattr(policy, "__name__", "") == "transformer_auto_wrap_policy":
            derived = fsdp_layer_classes(model)
            named = plugin.transformer_cls_names_to_wrap
            present = {type(m).__name__ for m in model.modules()}
            if not named:
                plugin.transformer_cls_names_to_wrap = derived
            elif set(named) - present:
                raise ConfigError([f"fsdp_transformer_layer_cls_to_wrap: {sorted(set(named) - present)} not in this "
                                   f"{type(model).__name__}; its blocks are {derived} (or leave the key out: it is "
                                   "derived from the model)"])
        return "fsdp"
    rank, world = distributed_world()
    if fsdp_requested() and rank == 0:
        log("note: FSDP was requested, but accelerate enables FSDP only on GPU-type devices; these CPU ranks run "
            "as plain data parallel (DDP): each holds the whole model (the saved model is an ordinary one either way)")
    return "ddp" if world > 1 else "single"


def refuse_sharded_parameters(trainer, what: str = "fine-tuning") -> None:
    """Refuse a Trainer whose parameters are sharded across ranks (FSDP, DeepSpeed ZeRO-3) for `what`: its
    prediction (`tasks.inference.predict`) runs the model on each rank's own share of the examples, a different number
    of batches per rank, and a sharded model's forward is collective (it gathers each block's weights), so the
    rank with fewer batches would leave the others waiting forever; its save writes the local module on rank 0.
    DDP and ZeRO-1/2 keep whole weights on every rank and run as they are. A config error naming the fix."""
    from nlp_ssl.errors import ConfigError

    how = None
    if getattr(trainer, "is_fsdp_enabled", False):
        how = "FSDP"
    elif getattr(trainer, "is_deepspeed_enabled", False):
        plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
        if getattr(plugin, "zero_stage", None) == 3:
            how = "DeepSpeed ZeRO-3"
    if how:
        raise ConfigError([f"accelerate config: {what} does not run with {how} (parameters sharded across ranks; "
                           "its prediction and save need whole weights on every rank); launch it with "
                           "configs/accelerate/multi-gpu.yaml (DDP) or deepspeed-zero2.yaml"])


def gather_full_state_dict(trainer) -> dict[str, Any] | None:
    """Collective: every rank must call it at the same point. The model's full (unsharded) weights on the process
    that saves, under FSDP and DeepSpeed; None without them (single process, DDP: every rank holds the weights),
    so the caller saves the model as it is.

    Uses `Accelerator.get_state_dict` (FSDP2: `get_model_state_dict(full_state_dict=True, cpu_offload=True)`, the
    whole dict on rank 0 and an empty one elsewhere; FSDP1: the FULL_STATE_DICT context with rank0_only;
    DeepSpeed ZeRO-3: the consolidated 16-bit weights; ZeRO-1/2: a copy of the whole module's, not a gather).
    """
    if getattr(trainer, "is_fsdp_enabled", False):
        return trainer.accelerator.get_state_dict(trainer.model)
    if getattr(trainer, "is_deepspeed_enabled", False):
        return trainer.accelerator.get_state_dict(trainer.model_wrapped)
    return None


def substate(state_dict: dict[str, Any] | None, prefix: str) -> dict[str, Any] | None:
    """The entries of `state_dict` under `prefix` (a submodule's), with the prefix removed; None stays None.

    Example:
        >>> substate({"generator.w": 1, "discriminator.w": 2}, "generator.")
        {'w': 1}
    """
    if state_dict is None:
        return None
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


# ----------------------------------------------------------------------------------------------------------
# Sharded prediction


def shard_of(order: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This rank's share of the example indices `order` (already in batching order): every `world`-th one from
    position `rank`, so with length-sorted `order` each rank gets examples of the same lengths (equal work).
    Nothing is padded or repeated: the shares are disjoint and together are `order` exactly.

    Example:
        >>> shard_of(np.arange(5), 1, 2)
        array([1, 3])
    """
    return np.asarray(order)[rank::world]


def gather_rows(indices: np.ndarray, rows: dict[str, list], n: int) -> dict[str, list]:
    """Collective: each rank's predicted rows (`rows[name][i]` for example `indices[i]`) -> every example's
    rows on every rank, in dataset order (example j at position j). Without a process group, the rows placed.

    Objects are gathered (`all_gather_object`), not tensors, because rows may differ in shape (per-token QA
    logits of different lengths); under nccl torch moves them through the current GPU.
    """
    import torch.distributed as dist

    shares = [(np.asarray(indices), rows)]
    _, world = distributed_world()
    if world > 1:
        shares = [None] * world
        dist.all_gather_object(shares, (np.asarray(indices), rows))
    out: dict[str, list] = {name: [None] * n for name in rows}
    for idx, part in shares:
        for name, values in part.items():
            for j, value in zip(idx, values):
                out[name][int(j)] = value
    missing = [j for j in range(n) if any(out[name][j] is None for name in out)]
    assert not missing, f"examples {missing[:5]} predicted by no rank"  # shard_of covers every index once
    return out
