"""Building a task model on a pretrained encoder, and the checks that come first: the model directory holds what
fine-tuning needs, the tokenizer and the sequence length fit the encoder, a saved head is really trained.

Example:
    >>> from transformers import AutoModelForSequenceClassification                 # doctest: +SKIP
    >>> model = build_task_model(AutoModelForSequenceClassification, "runs/mlm", "pretrained", seed=1,
    ...                          dropout=0.1, num_labels=2)                          # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from nlp_ssl.errors import ConfigError, ModelError

Init = Literal["pretrained", "scratch"]


def check_model_dir(path: str, tokenizer: str | None = None) -> None:
    """A pretrained model directory must hold config.json and (unless another tokenizer is given) a tokenizer.
    A Hub id (`bert-base-uncased`) is downloaded into the Hub cache first (`hub.local_path`)."""
    from nlp_ssl.hub.inputs import local_path

    p = Path(local_path(path, "model"))
    if tokenizer is not None:
        local_path(tokenizer, "tokenizer")
    if not p.is_dir():
        raise ModelError(f"model: {p} does not exist; pretrain one (`nlp-ssl pretrain CONFIG`) or fix the path")
    if not (p / "config.json").is_file():
        raise ModelError(f"model: {p} holds no config.json; point at a directory written by `nlp-ssl pretrain` "
                          "or `save_pretrained`")
    if tokenizer is None and not (p / "tokenizer.json").is_file():
        raise ModelError(f"model: {p} has no tokenizer (tokenizer.json); save the tokenizer into it, or set "
                          "`tokenizer:` to the tokenizer directory the encoder was pretrained with")


def check_trained_head(path: str, head: str, fix: str) -> None:
    """Refuse a model directory whose weights have no trained `head` (e.g. `ForQuestionAnswering`): loading it
    would silently add a randomly initialised head and answer with noise."""
    try:
        archs = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError) as e:
        raise ModelError(f"model: {path}/config.json cannot be read ({e}); {fix}") from None
    if not any(str(a).endswith(head) for a in archs):
        raise ModelError(f"model: {path} holds a {', '.join(archs) or 'model'} without a trained {head} head; {fix}")


_DROPOUT_KEYS = {
    "modernbert": ("embedding_dropout", "mlp_dropout", "attention_dropout", "classifier_dropout"),
    "default": ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"),
}


def build_task_model(auto_class, model_dir: str, init: Init, seed: int, dropout: float, **config_kwargs: Any):
    """A task model (`AutoModelFor...`) on the encoder in `model_dir`: its weights (`pretrained`) or the same
    architecture at random (`scratch`, seeded), with the task head initialised from `seed` in both cases."""
    import torch
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from nlp_ssl.hub.inputs import local_path

    model_dir = local_path(model_dir, "model")
    config = AutoConfig.from_pretrained(model_dir, **config_kwargs)
    for key in _DROPOUT_KEYS.get(config.model_type, _DROPOUT_KEYS["default"]):
        setattr(config, key, dropout)
    torch.manual_seed(seed)
    if init == "scratch":
        return auto_class.from_config(config)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized head" notice is expected here
    try:
        return auto_class.from_pretrained(model_dir, config=config)
    finally:
        hf_logging.set_verbosity(verbosity)


def classifier_pooling(model_type: str, pooling: str) -> dict[str, Any]:
    """Config keys that make a sequence classifier pool `cls` or `mean`.

    Mean pooling is offered where the saved model records it and the stock class applies it on loading
    (ModernBERT's `classifier_pooling`), so the fine-tuned directory predicts the same under plain transformers.
    BERT, RoBERTa and ELECTRA classifiers read [CLS] only: a mean-pooled head there would load as a different
    model without nlp_ssl (and custom modelling code is not shipped), so it is refused.

    Example:
        >>> classifier_pooling("modernbert", "mean")
        {'classifier_pooling': 'mean'}
    """
    if model_type == "modernbert":
        return {"classifier_pooling": pooling}
    if pooling != "cls":
        raise ConfigError([f"pooling: mean needs an encoder whose saved classifier records its pooling (modernbert); "
                           f"a {model_type} classifier reads [CLS] only and would not load as trained. Use pooling: cls"])
    return {}



def check_fits(tokenizer, model_config, max_length: int, where: str = "task.max_length") -> None:
    from nlp_ssl.modeling import max_sequence_length

    limit = max_sequence_length(model_config)
    if max_length > limit:
        raise ConfigError([f"{where}: {max_length} tokens exceed the model's {limit} positions; lower it"])
    if len(tokenizer) > model_config.vocab_size:
        raise ModelError(f"tokenizer: {len(tokenizer)} entries but the model's vocabulary has {model_config.vocab_size}; "
                         "use the tokenizer the encoder was pretrained with")
    check_special_ids(tokenizer, model_config)


def check_special_ids(tokenizer, model_config, where: str = "tokenizer") -> None:
    """The special token ids the model was built with (pad, bos, eos, cls, sep) must be the tokenizer's: a
    tokenizer of the same size but another vocabulary would otherwise train and score silently wrong."""
    pairs = [("pad_token_id", tokenizer.pad_token_id), ("bos_token_id", tokenizer.bos_token_id or tokenizer.cls_token_id),
             ("eos_token_id", tokenizer.eos_token_id or tokenizer.sep_token_id), ("cls_token_id", tokenizer.cls_token_id),
             ("sep_token_id", tokenizer.sep_token_id)]
    wrong = [f"{name} {getattr(model_config, name)} in the model but {tok_id} in the tokenizer" for name, tok_id in pairs
             if tok_id is not None and getattr(model_config, name, None) is not None and getattr(model_config, name) != tok_id]
    if wrong:
        raise ModelError(f"{where}: the tokenizer does not match the model ({'; '.join(wrong)}); use the tokenizer "
                         "the encoder was pretrained with")
