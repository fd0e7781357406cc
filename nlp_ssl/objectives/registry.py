"""The objective registry: `objective.task` names a pretext task, and the task owns everything that differs
between objectives (its collator, its model wrapper and loss, its validation set and metrics, what it saves).

A recipe never branches on the task: it calls `build_objective(...)` and wires the returned `ObjectiveSetup`
into the Trainer; the setup's `artifact` (what the saved directory is and how to load it) goes into
`run_info.json`, where the model card reads it. Objectives are registered by module path and imported only when
used, so loading a config stays free of torch.

    task        module                  trains                        saves (loaded by, pipeline tag)
    mlm         objectives/mlm.py       *ForMaskedLM (sparse head)    the MLM model (AutoModelForMaskedLM, fill-mask)
    clm         objectives/clm.py       *LMHeadModel / *ForCausalLM   the causal LM (AutoModelForCausalLM,
                                                                      text-generation)
    electra     objectives/electra.py   generator + discriminator     ElectraForPreTraining (AutoModelForPreTraining,
                                                                      none) + generator/ ElectraForMaskedLM;
                                                                      arch modernbert: ModernBertModel (AutoModel,
                                                                      feature-extraction) + generator/
                                                                      ModernBertForMaskedLM
    simcse      objectives/simcse.py    encoder, twice per sentence   the encoder (AutoModel, feature-extraction)
    mlm + sentence_order: true          MLM model + order head        the MLM model (AutoModelForMaskedLM, fill-mask)
                objectives/sentence_order.py                          + the order head's file

Example:
    >>> ObjectiveConfig(task="electra").electra.loss_weight
    50.0
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

from nlp_ssl.artifact import Artifact
from nlp_ssl.objectives.masking import MaskingConfig

if TYPE_CHECKING:
    from nlp_ssl.modeling import ModelConfig

Task = Literal["mlm", "clm", "electra", "simcse"]


@dataclass
class ElectraObjectiveConfig:
    """Replaced-token detection (Clark et al., 2020).

    Attributes:
        generator_width: the generator's hidden size as a share of the discriminator's (paper: 1/4 to 1/3).
            Its heads and feed-forward size shrink by the same share.
        generator_layers: the generator's depth (null: the discriminator's).
        loss_weight: lambda in loss = generator MLM + lambda x discriminator (paper: 50).
        embedding_size: width of the shared token/position embeddings (null: the discriminator's hidden size).
        temperature: sampling temperature of the generator's distribution (1: sample it as is).
    """

    generator_width: float = 0.25
    generator_layers: int | None = None
    loss_weight: float = 50.0
    embedding_size: int | None = None
    temperature: float = 1.0

    def validate(self) -> list[str]:
        problems = []
        if not 0 < self.generator_width <= 1:
            problems.append(f"generator_width: a share in (0, 1], got {self.generator_width}")
        if self.generator_layers is not None and self.generator_layers < 1:
            problems.append("generator_layers: must be at least 1 (or null for the discriminator's depth)")
        if self.loss_weight <= 0:
            problems.append("loss_weight: must be positive")
        if self.temperature <= 0:
            problems.append("temperature: must be positive")
        return problems


@dataclass
class SimCSEObjectiveConfig:
    """Unsupervised contrastive sentence learning (Gao et al., 2021).

    Attributes:
        temperature: softmax temperature of the cosine similarities (paper: 0.05).
        pooling: `cls_mlp` (CLS through a dense+tanh layer in training, CLS alone when used: the paper's
            unsupervised setting) or `mean` (mean of the token states, in training and use).
        dropout: dropout of the encoder, which makes the two views of a sentence differ (paper: 0.1); it
            overrides model.dropout and the dropout recorded by model.init_from.
        max_length: tokens per sentence (special tokens included); longer text units are cut.
    """

    temperature: float = 0.05
    pooling: Literal["cls_mlp", "mean"] = "cls_mlp"
    dropout: float = 0.1
    max_length: int = 64

    def validate(self) -> list[str]:
        problems = []
        if self.temperature <= 0:
            problems.append("temperature: must be positive")
        if not 0 < self.dropout < 1:
            problems.append(f"dropout: SimCSE needs dropout in (0, 1) to make two views, got {self.dropout}")
        if self.max_length < 4:
            problems.append("max_length: must be at least 4")
        return problems


@dataclass
class ObjectiveConfig:
    """The pretext task.

    Attributes:
        task: `mlm` (masked LM), `clm` (next-token LM), `electra` (replaced-token detection) or `simcse`
            (contrastive sentence embeddings; usually a stage after mlm/electra with model.init_from).
        masking: how positions are chosen and corrupted (mlm, electra).
        sentence_order: add ALBERT's sentence-order prediction as an auxiliary loss (mlm only; needs data
            prepared with `layout: documents`).
        sentence_order_weight: weight of that loss.
        electra, simcse: settings of those tasks (null: their defaults when the task is chosen).
    """

    task: Task = "mlm"
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    sentence_order: bool = False
    sentence_order_weight: float = 1.0
    electra: ElectraObjectiveConfig | None = None
    simcse: SimCSEObjectiveConfig | None = None

    def __post_init__(self) -> None:
        # The chosen task's section takes its defaults when left null; the other sections stay null.
        if self.task == "electra" and self.electra is None:
            self.electra = ElectraObjectiveConfig()
        if self.task == "simcse" and self.simcse is None:
            self.simcse = SimCSEObjectiveConfig()

    def validate(self) -> list[str]:
        problems = []
        if self.sentence_order and self.task != "mlm":
            problems.append(f"sentence_order: an auxiliary loss of task mlm, not {self.task}; set it to false")
        if self.sentence_order_weight <= 0:
            problems.append("sentence_order_weight: must be positive")
        return problems


@dataclass
class ObjectiveSetup:
    """What an objective hands the recipe.

    Attributes:
        model: the module the Trainer trains. A plain `PreTrainedModel` is saved by the Trainer as usual; a
            wrapper of several models implements `save_pretrained(dir, tokenizer=None)` (writes the standard
            artifacts) and `load_checkpoint(dir)` (resume), which the pretraining Trainer calls instead.
        config: the transformers config of the saved encoder (vocabulary checks, parameter counts).
        collator: training batches from packed blocks.
        artifact: what the run saves and how to load it (Auto class, pipeline tag, description), recorded in
            run_info.json for the model card.
        columns: dataset columns the collator reads.
        eval_set: the fixed validation set (None when the data has none).
        metric_kwargs: `compute_metrics` / `preprocess_logits_for_metrics` for the Trainer.
        describe: one line for the log (what is trained).
    """

    model: Any
    config: Any
    collator: Callable
    artifact: Artifact
    columns: tuple[str, ...] = ("input_ids", "length")
    eval_set: Any = None
    metric_kwargs: dict[str, Any] = field(default_factory=dict)
    describe: str = ""


# task -> "module:function"; the function has the signature of `build_objective` below.
REGISTRY: dict[str, str] = {
    "mlm": "nlp_ssl.objectives.mlm:build",
    "clm": "nlp_ssl.objectives.clm:build",
    "electra": "nlp_ssl.objectives.electra:build",
    "simcse": "nlp_ssl.objectives.simcse:build",
    "mlm+sentence_order": "nlp_ssl.objectives.sentence_order:build",
}


def registry_key(objective: ObjectiveConfig) -> str:
    return "mlm+sentence_order" if objective.sentence_order else objective.task


def register(name: str, target: str) -> None:
    """Add an objective: `target` is "package.module:function" (see `build_objective` for the signature)."""
    REGISTRY[name] = target


def build_objective(objective: ObjectiveConfig, model_cfg: "ModelConfig", tokenizer, blocks, *, seed: int = 0,
                    eval_blocks: int = 1000) -> ObjectiveSetup:
    """Build the model, collator and validation set of `objective` for the prepared `blocks`.

    Args:
        objective: the objective config (`objective.task` picks the module).
        model_cfg: the encoder to build (or load from `model_cfg.init_from`).
        tokenizer: the tokenizer the blocks were prepared with.
        blocks: the prepared `DatasetDict` (a `train` split, optionally `validation`).
        seed: seed of the masks (the validation set is masked once with seed + 1).
        eval_blocks: validation blocks used for evaluation.

    Example:
        >>> setup = build_objective(ObjectiveConfig(task="electra"), ModelConfig(), tok, dd)  # doctest: +SKIP
    """
    module_name, func = REGISTRY[registry_key(objective)].split(":")
    return getattr(importlib.import_module(module_name), func)(objective, model_cfg, tokenizer, blocks,
                                                               seed=seed, eval_blocks=eval_blocks)


def block_size_of(blocks) -> int:
    """Tokens per block of a prepared corpus."""
    return len(blocks["train"][0]["input_ids"])


def validation_split(blocks, n: int):
    """The first `n` validation blocks, or None when the corpus has none."""
    if "validation" not in blocks or not len(blocks["validation"]):
        return None
    return blocks["validation"].select(range(min(n, len(blocks["validation"]))))
