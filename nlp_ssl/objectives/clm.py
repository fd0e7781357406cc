"""Next-token language modelling: BERT/RoBERTa layers with causal attention and an LM head; the labels are
the inputs (the model shifts them)."""

from __future__ import annotations

from nlp_ssl.artifact import Artifact
from nlp_ssl.objectives.registry import ObjectiveConfig, ObjectiveSetup, block_size_of, validation_split

# What the run saves: `BertLMHeadModel` / `RobertaForCausalLM` (is_decoder), a standard causal LM.
ARTIFACT = Artifact("AutoModelForCausalLM", "text-generation",
                    "a causal language model: the encoder layers with causal attention and a next-token head")


def build(objective: ObjectiveConfig, model_cfg, tokenizer, blocks, *, seed: int = 0,
          eval_blocks: int = 1000) -> ObjectiveSetup:
    from nlp_ssl.modeling import build_causal_model
    from nlp_ssl.objectives.collators import CausalLMCollator

    model = build_causal_model(model_cfg, tokenizer, block_size_of(blocks))
    return ObjectiveSetup(model=model, config=model.config, artifact=ARTIFACT,
                          collator=CausalLMCollator(pad_token_id=tokenizer.pad_token_id),
                          eval_set=validation_split(blocks, eval_blocks), describe="next-token LM")
