"""Replaced-token detection (ELECTRA, Clark et al. 2020): a small masked-LM generator fills the masked positions
with tokens sampled from its own distribution, and the discriminator classifies every token as original or
replaced.

    inputs (masked)  --generator-->  logits on masked positions (N, V)  --sample-->  replacements (N,)
    corrupted = inputs with the replacements          --discriminator-->  one logit per token (B, T)
    loss = generator MLM cross-entropy + lambda x discriminator binary cross-entropy (lambda = 50)

Label rule: a position is "replaced" when its token differs from the original; a sampled token that equals
the original counts as original (the paper's rule, which keeps the labels honest when the generator is right).
The generator and the discriminator share the embedding module (token, position and segment embeddings and
their LayerNorm; the generator's output layer is tied to the shared token embeddings), so the embeddings learn
from the generator's softmax as well. The generator's head runs only on the masked positions, as our sparse
MLM does. No gradient flows from the discriminator into the generator through the sampling.

Saved: the discriminator as a standard `ElectraForPreTraining` directory (it is the encoder to fine-tune:
`AutoModel`, `AutoModelForSequenceClassification`, `AutoModelForQuestionAnswering` load it) and the generator as
an `ElectraForMaskedLM` in `generator/` (with the tokenizer, so `pipeline("fill-mask", model=DIR/generator)`
works).

`model.arch: modernbert` builds the same objective on pre-norm ModernBERT layers (at tiny size the post-norm
ELECTRA/BERT layers stay on the unigram plateau; see configs/pretrain/modernbert-tiny-imdb-recipe-cpu.yaml).
There is no `ElectraForPreTraining` for those layers, so:
- the discriminator is a `ModernBertModel` plus a replaced-token head (ModernBERT's prediction head, then one
  logit per token); the encoder is saved as a `ModernBertModel` directory (`AutoModel`,
  `AutoModelForSequenceClassification`, `AutoModelForQuestionAnswering` load it) whose weights also carry the
  head's dense+norm as `head.*`, which the Auto task heads start from, as they do from a masked-LM checkpoint's
  prediction head (so fine-tuning compares objectives, not head inits); the whole replaced-token head goes to
  `rtd_head.safetensors` (resuming and `model.init_from` only);
- ModernBERT has no embedding_size: the narrower generator reads the shared token table through a linear map
  (H -> generator width, `ProjectedEmbedding`), and its output layer is tied to that projected table
  (`TiedDecoder`), so its softmax trains every row of the shared table as in the paper. ModernBERT has rotary
  positions, so only the token table is shared. The generator is saved as a standard tied
  `ModernBertForMaskedLM` whose token table is the projected table (fill-mask loads it); the map itself goes to
  `generator/embedding_projection.safetensors` (resuming and `model.init_from` only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining
from transformers.utils import ModelOutput

from nlp_ssl.artifact import Artifact
from nlp_ssl.errors import ConfigError
from nlp_ssl.objectives.registry import (
    ElectraObjectiveConfig, ObjectiveConfig, ObjectiveSetup, block_size_of, validation_split,
)

GENERATOR_DIR = "generator"
RTD_HEAD_FILE = "rtd_head.safetensors"  # ModernBERT discriminator's head (resume only)
PROJECTION_FILE = "embedding_projection.safetensors"  # ModernBERT generator's map from the shared table
EVAL_SAMPLING_SEED = 0  # seed of the replacements sampled in evaluation (training: the global RNG)

# What the run saves. BERT layers: an `ElectraForPreTraining`, which AutoModelForPreTraining loads with its
# replaced-token head; no transformers pipeline serves that head (AutoModel and the task Auto classes load the
# encoder under it). ModernBERT layers: a bare `ModernBertModel` (see the module docstring).
ARTIFACT = Artifact("AutoModelForPreTraining", None,
                    "an ELECTRA discriminator: the encoder with its replaced-token detection head (one logit per "
                    "token); the generator, a masked-language model, is in generator/")
MODERNBERT_ARTIFACT = Artifact("AutoModel", "feature-extraction",
                               "the encoder of an ELECTRA discriminator (ModernBERT layers); the generator, a "
                               "masked-language model, is in generator/")


def generator_dims(hidden: int, heads: int, intermediate: int, width: float) -> tuple[int, int, int]:
    """(hidden, heads, intermediate) of a generator `width` times as wide as the discriminator.

    The heads shrink with the width (at least one) and the hidden size is rounded so the heads divide it.

    Example:
        >>> generator_dims(256, 4, 1024, 0.25)
        (64, 1, 256)
    """
    gen_heads = max(1, round(heads * width))
    gen_hidden = max(gen_heads, round(hidden * width / gen_heads) * gen_heads)
    return gen_hidden, gen_heads, max(1, round(intermediate * width))


def electra_configs(model_cfg, electra: ElectraObjectiveConfig, tokenizer) -> tuple[ElectraConfig, ElectraConfig]:
    """(discriminator, generator) configs: same vocabulary, embeddings and positions; the generator narrower."""
    L, H, A, I = model_cfg.dims()
    E = electra.embedding_size or H
    common = dict(vocab_size=len(tokenizer), embedding_size=E, max_position_embeddings=model_cfg.max_position_embeddings,
                  hidden_dropout_prob=model_cfg.dropout, attention_probs_dropout_prob=model_cfg.dropout,
                  pad_token_id=tokenizer.pad_token_id, type_vocab_size=2)
    disc = ElectraConfig(num_hidden_layers=L, hidden_size=H, num_attention_heads=A, intermediate_size=I, **common)
    gh, ga, gi = generator_dims(H, A, I, electra.generator_width)
    gen = ElectraConfig(num_hidden_layers=electra.generator_layers or L, hidden_size=gh, num_attention_heads=ga,
                        intermediate_size=gi, **common)
    for c in (disc, gen):
        c._attn_implementation = model_cfg.attn_implementation
    return disc, gen


@dataclass
class ElectraPreTrainingOutput(ModelOutput):
    """loss: total; generator_logits (N, V) on masked positions; discriminator_logits and labels (B, T)."""

    loss: torch.Tensor | None = None
    generator_loss: torch.Tensor | None = None
    discriminator_loss: torch.Tensor | None = None
    generator_logits: torch.Tensor | None = None
    discriminator_logits: torch.Tensor | None = None
    discriminator_labels: torch.Tensor | None = None


class ElectraPretrainer(nn.Module):
    """Generator + discriminator with shared embeddings, trained jointly (one optimizer over both).

    Args:
        generator: an `ElectraForMaskedLM` (narrow).
        discriminator: an `ElectraForPreTraining`; its embedding module becomes the generator's too.
        loss_weight: lambda of the discriminator loss.
        temperature: sampling temperature of the generator's distribution.

    In training the replacements come from the global RNG (seeded, saved in checkpoints); in evaluation
    (`.eval()`) from a generator seeded with `EVAL_SAMPLING_SEED` at each batch.
    """

    def __init__(self, generator: ElectraForMaskedLM, discriminator: ElectraForPreTraining, loss_weight: float = 50.0,
                 temperature: float = 1.0):
        super().__init__()
        if getattr(generator.config, "embedding_size", None) != getattr(discriminator.config, "embedding_size", None):
            raise ConfigError(["objective.electra: generator and discriminator need the same embedding_size to share embeddings"])
        self.generator = generator
        self.discriminator = discriminator
        self.loss_weight = loss_weight
        self.temperature = temperature
        self.sampling_generator: torch.Generator | None = None  # tests set one; training uses the global seed
        self.config = discriminator.config  # what the Trainer and the recipe read (vocabulary, ignore keys)
        self.tie()

    def tie(self) -> None:
        """Share the discriminator's embedding module with the generator; tie the generator's output layer."""
        self.generator.electra.embeddings = self.discriminator.electra.embeddings
        self.generator.generator_lm_head.weight = self.discriminator.electra.embeddings.word_embeddings.weight

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        """One token per row of logits (N, V), drawn from softmax(logits / temperature). -> (N,)"""
        probs = torch.softmax(logits.detach().float() / self.temperature, dim=-1)
        if probs.shape[0] == 0:
            return torch.zeros(0, dtype=torch.long, device=logits.device)
        gen = self.sampling_generator if self.sampling_generator is not None and probs.device.type == "cpu" else None
        if gen is None and not self.training:
            # Evaluation: a fixed stream, so the same weights score the same replacements on the fixed validation
            # set (masked once for that reason), and evaluating draws nothing from training's global RNG.
            gen = torch.Generator(device=probs.device).manual_seed(EVAL_SAMPLING_SEED)
        return torch.multinomial(probs, 1, generator=gen).squeeze(1)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> ElectraPreTrainingOutput:
        """input_ids (B, T): masked inputs; labels (B, T): original ids at masked positions, -100 elsewhere."""
        selected = labels != -100  # (B, T)
        gen_logits = self.generator_logits(input_ids, attention_mask, token_type_ids, selected)  # (N, V)
        targets = labels[selected]  # (N,)
        gen_loss = F.cross_entropy(gen_logits.float(), targets) if targets.numel() else gen_logits.sum() * 0.0

        with torch.no_grad():
            corrupted = input_ids.clone()
            corrupted[selected] = self.sample(gen_logits)
            original = torch.where(selected, labels, input_ids)  # (B, T): the text before masking
            replaced = (corrupted != original).long()  # (B, T): 1 = replaced; a correct sample is original
        disc_logits = self.discriminator_logits(corrupted, attention_mask, token_type_ids)  # (B, T)
        valid = attention_mask.bool() if attention_mask is not None else torch.ones_like(selected)
        disc_loss = F.binary_cross_entropy_with_logits(disc_logits[valid].float(), replaced[valid].float())
        labels_out = torch.where(valid, replaced, torch.full_like(replaced, -100))
        return ElectraPreTrainingOutput(loss=gen_loss + self.loss_weight * disc_loss, generator_loss=gen_loss,
                                        discriminator_loss=disc_loss, generator_logits=gen_logits,
                                        discriminator_logits=disc_logits, discriminator_labels=labels_out)

    def generator_logits(self, input_ids, attention_mask, token_type_ids, selected) -> torch.Tensor:
        """The generator's logits on the selected (masked) positions only: (N, V)."""
        gen_hidden = self.generator.electra(input_ids=input_ids, attention_mask=attention_mask,
                                            token_type_ids=token_type_ids)[0]  # (B, T, Hg)
        return self.generator.generator_lm_head(
            self.generator.generator_predictions(gen_hidden[selected]))  # (N, Hg) -> (N, E) -> (N, V)

    def discriminator_logits(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        """One replaced-token logit per position: (B, T)."""
        return self.discriminator(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).logits

    # --- what is saved ---------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str, tokenizer=None, state_dict=None, **kwargs) -> None:
        """The discriminator as `ElectraForPreTraining` in `save_directory`, the generator in `generator/`.
        `state_dict`: this wrapper's full weights when they were gathered from sharded ranks (else the modules')."""
        from nlp_ssl.distributed import substate

        out = Path(save_directory)
        self.discriminator.save_pretrained(str(out), state_dict=substate(state_dict, "discriminator."))
        self.generator.save_pretrained(str(out / GENERATOR_DIR), state_dict=substate(state_dict, "generator."))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(out / GENERATOR_DIR))

    def load_checkpoint(self, directory: str) -> None:
        """Load the weights written by `save_pretrained` (resuming), keeping the sharing intact."""
        from safetensors.torch import load_file

        for module, path in ((self.discriminator, Path(directory)), (self.generator, Path(directory) / GENERATOR_DIR)):
            missing, unexpected = module.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
            if unexpected or set(missing) - {"generator_lm_head.weight"}:
                raise ValueError(f"{path}: checkpoint does not match the model (missing {missing}, unexpected {unexpected})")
        self.tie()


# --- ModernBERT layers -------------------------------------------------------------------------------------
TABLE_KEY = "model.embeddings.tok_embeddings.weight"  # where a standalone ModernBERT keeps its token table


class ProjectedEmbedding(nn.Module):
    """A shared token table (V, H) read through a linear map to a narrower width: ids -> (..., Hg)."""

    def __init__(self, shared: nn.Embedding, width: int):
        super().__init__()
        self.shared = shared
        self.proj = nn.Linear(shared.embedding_dim, width, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.shared(input_ids))

    def table(self) -> torch.Tensor:
        """The (V, Hg) table the map amounts to."""
        return projected_table(self.shared.weight, self.proj.weight)


def projected_table(shared_weight: torch.Tensor, proj_weight: torch.Tensor) -> torch.Tensor:
    """(V, H) table and (Hg, H) map -> the (V, Hg) table a standalone generator saves."""
    return shared_weight @ proj_weight.T


class TiedDecoder(nn.Module):
    """The generator's output layer tied to its (projected, shared) input table: logits = x @ table^T + bias, so
    the generator's softmax trains every row of the shared table, as in the paper. The table is not a parameter
    of this module (it belongs to the embeddings); only the bias is."""

    def __init__(self, embedding: ProjectedEmbedding, bias: nn.Parameter | None):
        super().__init__()
        self.__dict__["embedding"] = embedding  # a reference, not a submodule: no second name for its weights
        self.bias = bias

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.embedding.table(), self.bias)


class ModernBertDiscriminator(nn.Module):
    """`ModernBertModel` + replaced-token head (ModernBERT's prediction head, then one logit per token)."""

    def __init__(self, model):
        from transformers.models.modernbert.modeling_modernbert import ModernBertPredictionHead

        super().__init__()
        self.model = model
        self.head = ModernBertPredictionHead(model.config)
        self.classifier = nn.Linear(model.config.hidden_size, 1)
        model._init_weights(self.head)  # ModernBERT's own init of its prediction head
        std = model.config.hidden_size ** -0.5  # ModernBERT's init of its classifiers
        nn.init.trunc_normal_(self.classifier.weight, std=std, a=-3 * std, b=3 * std)
        nn.init.zeros_(self.classifier.bias)

    @property
    def config(self):
        return self.model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]  # (B, T, H)
        return self.classifier(self.head(hidden)).squeeze(-1)  # (B, T)


class ModernBertElectraPretrainer(ElectraPretrainer):
    """ELECTRA on ModernBERT layers: a `ModernBertDiscriminator` and a narrow `ModernBertForMaskedLM` whose input
    embedding is the discriminator's token table through a `ProjectedEmbedding` and whose output layer is tied to
    that projected table (`TiedDecoder`)."""

    def tie(self) -> None:
        shared = self.discriminator.model.embeddings.tok_embeddings
        emb = self.generator.model.embeddings
        if isinstance(emb.tok_embeddings, ProjectedEmbedding):
            emb.tok_embeddings.shared = shared
        else:
            emb.tok_embeddings = ProjectedEmbedding(shared, self.generator.config.hidden_size)
        bias = self.generator.decoder.bias
        self.generator.decoder = TiedDecoder(emb.tok_embeddings, bias)

    def generator_logits(self, input_ids, attention_mask, token_type_ids, selected) -> torch.Tensor:
        gen_hidden = self.generator.model(input_ids=input_ids, attention_mask=attention_mask)[0]  # (B, T, Hg)
        return self.generator.decoder(self.generator.head(gen_hidden[selected]))  # (N, V)

    def discriminator_logits(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        return self.discriminator(input_ids=input_ids, attention_mask=attention_mask)

    def save_pretrained(self, save_directory: str, tokenizer=None, state_dict=None, **kwargs) -> None:
        """The encoder (`ModernBertModel`) with the replaced-token head's dense+norm as `head.*` (as a masked-LM
        checkpoint carries its prediction head: the Auto heads start from it) and `rtd_head.safetensors` (the
        whole head); the generator as a tied `ModernBertForMaskedLM` in `generator/` (token table and output
        layer = the projected shared table) with `embedding_projection.safetensors` (the map)."""
        from safetensors.torch import save_file

        from nlp_ssl.distributed import substate

        out, gen_out = Path(save_directory), Path(save_directory) / GENERATOR_DIR
        full = state_dict if state_dict is not None else self.state_dict()
        shared_key = "generator.model.embeddings.tok_embeddings.shared.weight"
        table = full.get("discriminator." + TABLE_KEY, full.get(shared_key))  # a gathered dict may hold one name
        if table is None:
            raise ValueError(f"ELECTRA state dict holds no token table (neither discriminator.{TABLE_KEY} nor {shared_key})")
        disc = substate(full, "discriminator.")
        disc[TABLE_KEY] = table
        encoder = {k: v for k, v in disc.items() if k.startswith(("model.", "head."))}
        self.discriminator.model.save_pretrained(str(out), state_dict=encoder)
        save_file({k: v.detach().contiguous() for k, v in disc.items() if k.startswith(("head.", "classifier."))},
                  str(out / RTD_HEAD_FILE))
        gen = substate(full, "generator.")
        key = "model.embeddings.tok_embeddings."
        gen.pop(key + "shared.weight", None)
        proj = gen.pop(key + "proj.weight")
        projected = projected_table(table, proj).detach()
        gen[key + "weight"] = projected
        gen["decoder.weight"] = projected  # tied in the saved config (modernbert_electra_configs)
        self.generator.save_pretrained(str(gen_out), state_dict=gen)
        save_file({"proj.weight": proj.detach().contiguous()}, str(gen_out / PROJECTION_FILE))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(gen_out))

    def load_checkpoint(self, directory: str) -> None:
        from safetensors.torch import load_file

        path = Path(directory)
        disc = load_file(str(path / "model.safetensors"))
        disc.update(load_file(str(path / RTD_HEAD_FILE)))
        missing, unexpected = self.discriminator.load_state_dict(disc, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path}: checkpoint does not match the discriminator (missing {missing}, "
                             f"unexpected {unexpected})")
        gen = load_file(str(path / GENERATOR_DIR / "model.safetensors"))
        for k in ("model.embeddings.tok_embeddings.weight", "decoder.weight"):  # the projected table: rebuilt
            gen.pop(k, None)
        missing, unexpected = self.generator.load_state_dict(gen, strict=False)
        shared = {"model.embeddings.tok_embeddings.shared.weight", "model.embeddings.tok_embeddings.proj.weight"}
        if unexpected or set(missing) != shared:
            raise ValueError(f"{path / GENERATOR_DIR}: checkpoint does not match the generator "
                             f"(missing {missing}, unexpected {unexpected})")
        proj = load_file(str(path / GENERATOR_DIR / PROJECTION_FILE))
        if set(proj) != {"proj.weight"}:
            raise ValueError(f"{path / GENERATOR_DIR / PROJECTION_FILE}: expected one tensor proj.weight, got {sorted(proj)}")
        self.generator.model.embeddings.tok_embeddings.proj.load_state_dict({"weight": proj["proj.weight"]}, strict=True)
        self.tie()


def modernbert_electra_configs(model_cfg, electra: ElectraObjectiveConfig, tokenizer):
    """(discriminator, generator) ModernBertConfigs: same vocabulary; the generator narrower and no deeper."""
    import copy

    from nlp_ssl.modeling import hf_config

    L, H, A, I = model_cfg.dims()
    problems = []
    if electra.embedding_size:
        problems.append("objective.electra.embedding_size: ModernBERT has no separate embedding width; set it to "
                        "null (the generator reads the shared table through a linear map)")
    if electra.generator_layers and electra.generator_layers > L:
        problems.append(f"objective.electra.generator_layers: at most the discriminator's {L} layers with model.arch "
                        f"modernbert (got {electra.generator_layers})")
    if problems:
        raise ConfigError(problems)
    disc = hf_config(model_cfg, tokenizer)
    gh, ga, gi = generator_dims(H, A, I, electra.generator_width)
    gen = copy.deepcopy(disc)
    gen.num_hidden_layers, gen.hidden_size, gen.num_attention_heads = electra.generator_layers or L, gh, ga
    gen.intermediate_size, gen.tie_word_embeddings = gi, True
    if getattr(gen, "layer_types", None) is not None:
        gen.layer_types = gen.layer_types[:gen.num_hidden_layers]
    for c in (disc, gen):
        c._attn_implementation = model_cfg.attn_implementation
    return disc, gen


def build_modernbert_models(model_cfg, objective: ObjectiveConfig, tokenizer) -> ModernBertElectraPretrainer:
    """ModernBERT generator and discriminator from config, or from a saved ModernBERT ELECTRA run (init_from:
    it needs the run's generator/, rtd_head.safetensors and generator/embedding_projection.safetensors)."""
    from transformers import AutoConfig, ModernBertForMaskedLM, ModernBertModel

    e = objective.electra
    if model_cfg.init_from:
        from nlp_ssl.hub.inputs import local_path

        init = Path(local_path(model_cfg.init_from, "model.init_from"))
        for need in (GENERATOR_DIR + "/config.json", GENERATOR_DIR + "/" + PROJECTION_FILE, RTD_HEAD_FILE):
            if not (init / need).exists():
                raise ConfigError([f"model.init_from: {model_cfg.init_from} holds no {need} of a ModernBERT ELECTRA run"])
        disc_cfg = AutoConfig.from_pretrained(str(init))
        gen_cfg = AutoConfig.from_pretrained(str(init / GENERATOR_DIR))
        for c in (disc_cfg, gen_cfg):
            c._attn_implementation = model_cfg.attn_implementation
    else:
        disc_cfg, gen_cfg = modernbert_electra_configs(model_cfg, e, tokenizer)
    model = ModernBertElectraPretrainer(ModernBertForMaskedLM(gen_cfg), ModernBertDiscriminator(ModernBertModel(disc_cfg)),
                                        loss_weight=e.loss_weight, temperature=e.temperature)
    if model_cfg.init_from:
        model.load_checkpoint(str(init))
    return model


def build_models(model_cfg, objective: ObjectiveConfig, tokenizer) -> ElectraPretrainer:
    """Generator and discriminator from config (random init), or from a saved ELECTRA run (`model.init_from`)."""
    e = objective.electra
    if model_cfg.arch == "modernbert":
        return build_modernbert_models(model_cfg, objective, tokenizer)
    if model_cfg.arch != "bert":
        raise ConfigError([f"model.arch: objective.task electra builds ELECTRA encoders on BERT layers (arch bert) or "
                           f"ModernBERT layers (arch modernbert), not {model_cfg.arch}"])
    if model_cfg.init_from:
        from nlp_ssl.hub.inputs import local_path

        init = local_path(model_cfg.init_from, "model.init_from")
        gen_dir = Path(init) / GENERATOR_DIR
        if not (gen_dir / "config.json").exists():
            raise ConfigError([f"model.init_from: {model_cfg.init_from} holds no {GENERATOR_DIR}/ of an ELECTRA run"])
        disc = ElectraForPreTraining.from_pretrained(init, attn_implementation=model_cfg.attn_implementation)
        gen = ElectraForMaskedLM.from_pretrained(str(gen_dir), attn_implementation=model_cfg.attn_implementation)
    else:
        disc_cfg, gen_cfg = electra_configs(model_cfg, e, tokenizer)
        disc, gen = ElectraForPreTraining(disc_cfg), ElectraForMaskedLM(gen_cfg)
    return ElectraPretrainer(gen, disc, loss_weight=e.loss_weight, temperature=e.temperature)


def preprocess_logits(outputs, labels):
    """Per batch, before gathering: (generator predictions aligned with labels (B, T), discriminator
    predictions (B, T), discriminator labels (B, T) with -100 on padding)."""
    _gen_loss, _disc_loss, gen_logits, disc_logits, disc_labels = outputs
    preds = torch.full_like(labels, -100)
    preds[labels != -100] = gen_logits.argmax(-1)
    return preds, (disc_logits > 0).long(), disc_labels


def electra_metrics(eval_pred) -> dict[str, float]:
    """Generator masked-token accuracy; discriminator accuracy over all tokens and recall/precision of
    `replaced`; the share of tokens replaced."""
    (gen_preds, disc_preds, disc_labels), labels = eval_pred.predictions, eval_pred.label_ids
    masked = labels != -100
    valid = disc_labels != -100
    p, y = disc_preds[valid], disc_labels[valid]
    out = {"mlm_accuracy": float((gen_preds[masked] == labels[masked]).mean()) if masked.any() else math.nan,
           "rtd_accuracy": float((p == y).mean()) if y.size else math.nan,
           "replaced_share": float(y.mean()) if y.size else math.nan}
    out["rtd_replaced_recall"] = float(p[y == 1].mean()) if (y == 1).any() else math.nan
    out["rtd_replaced_precision"] = float(y[p == 1].mean()) if (p == 1).any() else math.nan
    return out


def build(objective: ObjectiveConfig, model_cfg, tokenizer, blocks, *, seed: int = 0,
          eval_blocks: int = 1000) -> ObjectiveSetup:
    from nlp_ssl.modeling import count_parameters, max_sequence_length
    from nlp_ssl.objectives.mlm import block_columns, check_whole_word, masked_eval_set, mlm_collator

    whole_word = check_whole_word(objective, blocks)
    model = build_models(model_cfg, objective, tokenizer)
    block_size = block_size_of(blocks)
    if block_size > max_sequence_length(model.config):
        raise ConfigError([f"data: blocks of {block_size} tokens exceed the model's {model.config.max_position_embeddings} "
                           "positions; raise model.max_position_embeddings or prepare shorter blocks"])
    collator = mlm_collator(objective, tokenizer, seed)
    val = validation_split(blocks, eval_blocks)
    g = model.generator.config
    return ObjectiveSetup(
        model=model, config=model.config, collator=collator,
        artifact=MODERNBERT_ARTIFACT if isinstance(model, ModernBertElectraPretrainer) else ARTIFACT,
        columns=block_columns(whole_word),
        eval_set=masked_eval_set(val, collator, eval_blocks, seed + 1) if val is not None else None,
        metric_kwargs=dict(compute_metrics=electra_metrics, preprocess_logits_for_metrics=preprocess_logits),
        describe=f"ELECTRA: generator {g.num_hidden_layers}x{g.hidden_size} "
                 f"({count_parameters(model.generator) / 1e6:.2f}M with the shared embeddings), "
                 f"discriminator loss weight {objective.electra.loss_weight:g}")
