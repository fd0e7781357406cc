"""Encoders built from config with the library's own classes (BERT, RoBERTa, ModernBERT), size presets,
and sparse masked-LM prediction.

Sparse prediction: a masked-LM head maps every position to vocabulary logits, (B, T, H) -> (B, T, V), yet
only the ~15% masked positions carry a loss. For small encoders that head is most of the compute (a 30k
vocabulary against a 128-wide model), so we run it only on the masked positions, (N, H) -> (N, V). The loss
is the same full-vocabulary cross-entropy over the same positions; only the wasted work is gone.
ModernBERT has this built in (`sparse_prediction`); for BERT and RoBERTa we subclass their `*ForMaskedLM`.
The subclasses keep the stock class name and weights layout, so what we save is a plain `BertForMaskedLM`
/ `RobertaForMaskedLM` checkpoint that `AutoModelForMaskedLM` loads without nlp_ssl.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from nlp_ssl.errors import ConfigError

if TYPE_CHECKING:
    import torch

Arch = Literal["bert", "roberta", "modernbert"]
Preset = Literal["tiny", "mini", "small", "medium", "base"]

# (layers, hidden, heads, intermediate): the BERT miniatures of Turc et al. (2019), up to BERT-base.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}


@dataclass
class ModelConfig:
    """Which encoder to build.

    Attributes:
        arch: `bert`, `roberta` or `modernbert` (pre-norm, rotary positions, GeGLU; takes higher learning rates).
        preset: size preset (see PRESETS); the four fields below override single dimensions when set.
        num_layers, hidden_size, num_heads, intermediate_size: overrides of the preset.
        max_position_embeddings: longest sequence the model accepts.
        dropout: hidden and attention dropout. 0 by default: short pretraining runs do not overfit, and on
            CPUs dropout's random masks cost a third of a tiny model's step (cramming and ModernBERT use none).
        sparse_prediction: compute the masked-LM head only on masked positions (same loss, less compute).
        init_from: start from this saved model instead of random weights (continued pretraining): a directory,
            or a Hub id such as `bert-base-uncased` (domain-adaptive pretraining of a published encoder).
        attn_implementation: `sdpa` (PyTorch fused attention) or `eager`; speed only.
    """

    arch: Arch = "bert"
    preset: Preset = "tiny"
    num_layers: int | None = None
    hidden_size: int | None = None
    num_heads: int | None = None
    intermediate_size: int | None = None
    max_position_embeddings: int = 512
    dropout: float = 0.0
    sparse_prediction: bool = True
    init_from: str | None = None
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"

    def dims(self) -> tuple[int, int, int, int]:
        L, H, A, I = PRESETS[self.preset]
        return (self.num_layers or L, self.hidden_size or H, self.num_heads or A, self.intermediate_size or I)

    def validate(self) -> list[str]:
        L, H, A, I = self.dims()
        problems = []
        if H % A:
            problems.append(f"hidden_size {H} must be divisible by num_heads {A}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout: must be in [0, 1), got {self.dropout}")
        return problems


def hf_config(cfg: ModelConfig, tokenizer):
    """The transformers config for `cfg`, with vocabulary and special-token ids taken from the tokenizer."""
    from transformers import BertConfig, ModernBertConfig, RobertaConfig

    L, H, A, I = cfg.dims()
    ids = dict(pad_token_id=tokenizer.pad_token_id, vocab_size=len(tokenizer))
    if cfg.arch == "bert":
        return BertConfig(num_hidden_layers=L, hidden_size=H, num_attention_heads=A, intermediate_size=I,
                          max_position_embeddings=cfg.max_position_embeddings, hidden_dropout_prob=cfg.dropout,
                          attention_probs_dropout_prob=cfg.dropout, **ids)
    if cfg.arch == "roberta":
        # RoBERTa numbers positions from pad_token_id + 1, so it needs two extra position slots.
        return RobertaConfig(num_hidden_layers=L, hidden_size=H, num_attention_heads=A, intermediate_size=I,
                             max_position_embeddings=cfg.max_position_embeddings + 2, hidden_dropout_prob=cfg.dropout,
                             attention_probs_dropout_prob=cfg.dropout, type_vocab_size=pair_token_types(tokenizer),
                             bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, **ids)
    return ModernBertConfig(num_hidden_layers=L, hidden_size=H, num_attention_heads=A, intermediate_size=I,
                            max_position_embeddings=cfg.max_position_embeddings, attention_dropout=cfg.dropout,
                            mlp_dropout=cfg.dropout, embedding_dropout=cfg.dropout,
                            sparse_prediction=cfg.sparse_prediction, global_attn_every_n_layers=1,
                            cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                            bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, **ids)


def pair_token_types(tokenizer) -> int:
    """Token types the tokenizer emits for a sentence pair: 2 for the `bert` template (`$B:1`), 1 for `roberta`.

    An encoder must have at least that many token-type embeddings, or sentence-pair tasks (RTE, MRPC, QA)
    index past its table.
    """
    enc = tokenizer("a", "b", return_token_type_ids=True)
    return max(enc.get("token_type_ids") or [0]) + 1


def align_token_types(model, tokenizer) -> bool:
    """Give `model` as many token-type embeddings as `tokenizer` emits for pairs; True when it had fewer.

    An encoder built with one token type (RoBERTa style) meets a tokenizer whose pair template marks the second
    segment with type 1: the new rows start as copies of row 0, so the model computes exactly what it did
    when every token had type 0, and fine-tuning may then learn to tell the segments apart.
    """
    import torch

    have = getattr(model.config, "type_vocab_size", None)
    need = pair_token_types(tokenizer)
    embeddings = getattr(model.base_model, "embeddings", None)
    old = getattr(embeddings, "token_type_embeddings", None)
    if have is None or old is None or have >= need:
        return False
    new = torch.nn.Embedding(need, old.embedding_dim, dtype=old.weight.dtype, device=old.weight.device)
    with torch.no_grad():
        new.weight.copy_(old.weight[:1].expand(need, -1))
        new.weight[:have] = old.weight
    embeddings.token_type_embeddings = new
    model.config.type_vocab_size = need
    return True


def max_sequence_length(config) -> int:
    """Longest input the model takes (RoBERTa reserves two position slots)."""
    n = config.max_position_embeddings
    return n - 2 if config.model_type in ("roberta", "xlm-roberta", "camembert") else n


def _sparse_output(hidden: "torch.Tensor", labels: "torch.Tensor", head, num_items_in_batch=None) -> "object":
    """Head and cross-entropy on the masked positions only. hidden (B, T, H), labels (B, T) -> logits (N, V).

    With `num_items_in_batch` (the Trainer's count of labels over all devices and accumulation steps) the loss
    is a sum over that count, as transformers' own losses do; the Trainer then rescales it so gradients and
    logged losses equal those of one process with the same global batch.
    """
    import torch.nn.functional as F
    from transformers.modeling_outputs import MaskedLMOutput

    selected = labels != -100  # (B, T)
    logits = head(hidden[selected])  # (N, H) -> (N, V)
    if num_items_in_batch is None:
        loss = F.cross_entropy(logits.float(), labels[selected])
    else:
        loss = F.cross_entropy(logits.float(), labels[selected], reduction="sum") / num_items_in_batch
    return MaskedLMOutput(loss=loss, logits=logits)


def _sparse_forward(stock, encoder_attr: str, head_attr: str):
    """A `forward` that runs `stock.forward` for inference and the sparse head when labels are given."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                **kwargs):
        if labels is None:
            return stock.forward(self, input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids, position_ids=position_ids, **kwargs)
        hidden = getattr(self, encoder_attr)(input_ids=input_ids, attention_mask=attention_mask,
                                             token_type_ids=token_type_ids, position_ids=position_ids)[0]
        return _sparse_output(hidden, labels, getattr(self, head_attr), kwargs.get("num_items_in_batch"))

    return forward


@functools.lru_cache(maxsize=None)  # one class per process, so isinstance and pickling see a single type
def _sparse_classes():
    """Subclasses of BertForMaskedLM / RobertaForMaskedLM whose training forward is sparse.

    They are created under the stock class names on purpose: `save_pretrained` records the class name in
    `config.architectures`, and the saved model must read as the stock class to every loader.
    """
    from transformers import BertForMaskedLM, RobertaForMaskedLM

    return {
        arch: type(stock.__name__, (stock,), {"forward": _sparse_forward(stock, arch, head), "__module__": __name__})
        for arch, stock, head in (("bert", BertForMaskedLM, "cls"), ("roberta", RobertaForMaskedLM, "lm_head"))
    }


def model_class(arch: str, sparse: bool):
    from transformers import BertForMaskedLM, ModernBertForMaskedLM, RobertaForMaskedLM

    if sparse and arch in ("bert", "roberta"):
        return _sparse_classes()[arch]
    return {"bert": BertForMaskedLM, "roberta": RobertaForMaskedLM, "modernbert": ModernBertForMaskedLM}[arch]


def build_mlm_model(cfg: ModelConfig, tokenizer, block_size: int | None = None):
    """A masked-LM model from `cfg` (random init, or `init_from`), checked against the tokenizer and block size.

    Raises:
        ConfigError: the tokenizer's vocabulary does not match the model's, or blocks exceed its positions.
    """
    if cfg.init_from:
        from transformers import AutoConfig

        from nlp_ssl.hub.inputs import local_path

        init_from = local_path(cfg.init_from, "model.init_from")  # a directory or a Hub id
        config = AutoConfig.from_pretrained(init_from)
        if config.model_type != cfg.arch:
            raise ConfigError([f"model.arch: {cfg.arch!r} but model.init_from {cfg.init_from} is a {config.model_type!r} model"])
        if config.vocab_size != len(tokenizer):
            raise ConfigError([f"model.init_from: {cfg.init_from} has a vocabulary of {config.vocab_size} but the "
                               f"tokenizer has {len(tokenizer)}; use the tokenizer the model was trained with"])
        if cfg.arch == "modernbert":
            config.sparse_prediction = cfg.sparse_prediction
        model = model_class(cfg.arch, cfg.sparse_prediction).from_pretrained(
            init_from, config=config, attn_implementation=cfg.attn_implementation)
    else:
        config = hf_config(cfg, tokenizer)
        config._attn_implementation = cfg.attn_implementation
        model = model_class(cfg.arch, cfg.sparse_prediction)(config)
    if block_size is not None and block_size > max_sequence_length(model.config):
        raise ConfigError([f"data: blocks of {block_size} tokens exceed the model's {max_sequence_length(model.config)} "
                           "positions; raise model.max_position_embeddings or prepare shorter blocks"])
    return model


def check_vocab(model_vocab: int, tokenizer) -> None:
    """The tokenizer must not produce ids the embedding table lacks."""
    if len(tokenizer) > model_vocab:
        raise ConfigError([f"tokenizer has {len(tokenizer)} tokens but the model's vocabulary is {model_vocab}; "
                           "use the tokenizer the model was built with"])


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build_causal_model(cfg: ModelConfig, tokenizer, block_size: int | None = None):
    """A next-token LM (BERT or RoBERTa layers with causal attention) for the `clm` objective."""
    from transformers import AutoModelForCausalLM, BertLMHeadModel, RobertaForCausalLM

    if cfg.init_from:
        from nlp_ssl.hub.inputs import local_path

        model = AutoModelForCausalLM.from_pretrained(local_path(cfg.init_from, "model.init_from"), is_decoder=True)
    else:
        config = hf_config(cfg, tokenizer)
        config.is_decoder = True
        config._attn_implementation = cfg.attn_implementation
        model = {"bert": BertLMHeadModel, "roberta": RobertaForCausalLM}[cfg.arch](config)
    check_vocab(model.config.vocab_size, tokenizer)
    if block_size is not None and block_size > max_sequence_length(model.config):
        raise ConfigError([f"data: blocks of {block_size} tokens exceed the model's {max_sequence_length(model.config)} "
                           "positions; raise model.max_position_embeddings or prepare shorter blocks"])
    return model
