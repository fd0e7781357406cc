"""Model cards (round trip through huggingface_hub's own parser), how a card learns what a directory holds, the files
a push shares, Hub-id inputs. tests/test_cards.py runs each card's own usage snippet on real saved models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nlp_ssl.hub.cards import artifact_of, auto_class_for, build_model_card, write_model_card
from nlp_ssl.hub.inputs import looks_like_hub_id
from nlp_ssl.hub.push import files_to_upload


def _write(d: Path, **files) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        name = name.replace("__", ".")
        text = content if isinstance(content, str) else json.dumps(content) if name.endswith(".json") else yaml.safe_dump(content)
        (d / name).write_text(text)
    return d


ENCODER_CFG = {"output_dir": "runs/enc", "data": "runs/data", "model": {"arch": "bert", "init_from": None},
               "objective": {"task": "mlm", "masking": {"strategy": "token", "mask_rate": 0.15}},
               "train": {"per_device_train_batch_size": 64, "gradient_accumulation_steps": 1, "learning_rate": 1e-3,
                         "max_time_minutes": 25}}
SST2_TASK = {"type": "classification", "preset": "sst2", "metrics": ["accuracy"],
             "train": {"path": "glue/sst2/train.tsv", "hub_name": "nyu-mll/glue", "hub_config": "sst2", "split": "train"},
             "eval": {"dev": {"path": "glue/sst2/dev.tsv", "hub_name": "nyu-mll/glue", "hub_config": "sst2",
                              "split": "validation"}}}


def encoder_dir(tmp_path: Path) -> Path:
    return _write(tmp_path / "enc", config__json={"model_type": "bert", "architectures": ["BertForMaskedLM"],
                                                   "num_hidden_layers": 2, "hidden_size": 128, "vocab_size": 8192},
                  config__yaml=ENCODER_CFG,
                  run_info__json={"command": "pretrain", "parameters": 1536128, "world_size": 1,
                                  "versions": {"torch": "2.13.0"}, "git": {"commit": "abc123def4567", "dirty": False}},
                  metrics__json={"train_runtime_s": 1500.0, "steps": 2500, "tokens_seen": 20480000,
                                 "eval_loss": 4.5, "eval_mlm_accuracy": 0.31},
                  tokenizer__json="{}")


def test_encoder_card_round_trips_and_states_its_budget(tmp_path):
    from huggingface_hub import ModelCard

    d = encoder_dir(tmp_path)
    path = write_model_card(d, hardware="CPU (2 cores)")
    card = ModelCard.load(path)  # the Hub library's own parser; raises on invalid metadata
    assert card.data.pipeline_tag == "fill-mask" and card.data.library_name == "transformers"
    assert card.data.base_model is None and "nlp-ssl" in card.data.tags
    text = path.read_text()
    assert "A 25-minute 1.5M-parameter bert encoder (2 layers, width 128)" in text
    assert "| tokens seen | 20,480,000 |" in text and "| hardware | CPU (2 cores) |" in text
    assert "| eval_mlm_accuracy | 0.31 |" in text and "AutoModelForMaskedLM" in text
    assert "max_time_minutes: 25" in text  # the resolved config


def finetuned_dir(root: Path, name: str, lr: float, seed: int, acc: float, model: str) -> Path:
    return _write(root / name, config__json={"model_type": "bert", "architectures": ["BertForSequenceClassification"],
                                             "id2label": {"0": "negative", "1": "positive"}},
                  config__yaml={"output_dir": str(root / name), "model": model, "init": "pretrained", "task": SST2_TASK,
                                "max_train_samples": 100, "seeds": [seed], "train": {"num_train_epochs": 30, "max_steps": -1}},
                  run_info__json={"command": "finetune", "labels": ["negative", "positive"]},
                  metrics__json={"learning_rate": lr, "seed": seed, "init": "pretrained", "train_examples": 100,
                                 "steps": 190, "train_seconds": 12.0, "eval": {"dev": {"accuracy": acc}}})


def test_few_label_card_has_model_index_with_mean_and_std_over_seeds(tmp_path):
    """A run of a multi-seed grid at the chosen rate: its own score plus mean and std over the seeds, in
    model-index form that huggingface_hub parses back into the same EvalResults."""
    from huggingface_hub import ModelCard

    root = tmp_path / "sst2-100-pretrained"
    enc = encoder_dir(tmp_path)
    _write(enc, config__yaml={**ENCODER_CFG, "hub": {"push": True, "repo_id": "me/bert-tiny"}})
    for seed, acc in ((1, 0.70), (2, 0.74)):
        finetuned_dir(root, f"lr0.001-seed{seed}", 1e-3, seed, acc, str(enc))
    finetuned_dir(root, "lr0.0001-seed1", 1e-4, 1, 0.6, str(enc))
    _write(root, metrics__json={"selection": {"split": "dev", "metric": "accuracy", "best_learning_rate": 0.001,
                                              "grid": {"0.0001": 0.6, "0.001": 0.7}},
                                "seeds": [1, 2], "report_split": "dev", "runs": [],
                                "summary": {"dev": {"accuracy": {"mean": 0.72, "std": 0.028284271247461905, "n": 2}}}})
    card = ModelCard.load(write_model_card(root / "lr0.001-seed2", hardware="CPU"))
    got = [(r.task_type, r.dataset_type, r.dataset_config, r.dataset_split, r.metric_type, r.metric_value)
           for r in card.data.eval_results]
    assert got == [("text-classification", "nyu-mll/glue", "sst2", "validation", "accuracy", 0.74),
                   ("text-classification", "nyu-mll/glue", "sst2", "validation", "accuracy_mean", 0.72),
                   ("text-classification", "nyu-mll/glue", "sst2", "validation", "accuracy_std", 0.028284271247461905)]
    assert card.data.model_name == "sst2-100-pretrained-lr0.001-seed2"
    assert card.data.base_model == "me/bert-tiny"  # the repository the local encoder was pushed to
    assert card.data.datasets == ["nyu-mll/glue"] and card.data.pipeline_tag == "text-classification"
    assert "dev: accuracy | 0.74 (mean 0.72 ± 0.02828 over 2 seeds)" in card.text
    # a rate the grid did not choose: its own score only, and a note
    other = ModelCard.load(write_model_card(root / "lr0.0001-seed1", hardware="CPU"))
    assert [r.metric_type for r in other.data.eval_results] == ["accuracy"]
    assert "not selected" in other.text
    # and the card text is stable: the same directory gives the same card
    assert str(build_model_card(root / "lr0.001-seed2", "CPU")) == (root / "lr0.001-seed2" / "README.md").read_text()


def test_tokenizer_card_and_hub_base_model(tmp_path):
    from huggingface_hub import ModelCard

    tok = _write(tmp_path / "tok", tokenizer__json="{}", tokenizer_config__json={},
                 config__yaml={"data": {"hub_name": "wikimedia/wikipedia",  # read from the Hub
                                        "split": "train"}, "tokenizer": {"model": "wordpiece", "vocab_size": 8192}},
                 run_info__json={"command": "train-tokenizer"},
                 tokenizer_summary__json={"vocab_size": 8192, "training_documents": 12847, "tokens_per_word": 1.56})
    card = ModelCard.load(write_model_card(tok))
    assert card.data.datasets == ["wikimedia/wikipedia"] and "tokenizer" in card.data.tags
    assert "12,847 documents" in card.text
    d = finetuned_dir(tmp_path, "ft", 1e-3, 1, 0.9, "google/electra-small-discriminator")
    card = ModelCard.load(write_model_card(d))
    assert card.data.base_model == "google/electra-small-discriminator"


def test_push_shares_only_the_model_files(tmp_path):
    d = encoder_dir(tmp_path)
    for rel in ("model.safetensors", "checkpoints/checkpoint-100/optimizer.pt", "checkpoints/checkpoint-100/model.safetensors",
                "tensorboard/events.out", "log_history.json", "plots/loss.png", "training_args.bin", ".README.md.tmp-1"):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(b"x")
    write_model_card(d)
    base = ["README.md", "config.json", "config.yaml", "metrics.json", "model.safetensors", "run_info.json",
            "tokenizer.json"]
    assert files_to_upload(d) == base
    assert files_to_upload(d, include_logs=True) == sorted(base + ["log_history.json", "plots/loss.png",
                                                                   "tensorboard/events.out"])


@pytest.mark.parametrize("name,expected", [("bert-base-uncased", True), ("google/electra-small-discriminator", True),
                                           ("runs/quickstart/encoder", False), ("./enc", False), ("/abs/x", False),
                                           ("a/b/c", False), ("", False)])
def test_hub_ids_are_told_from_paths(name, expected):
    assert looks_like_hub_id(name) is expected


def test_card_names_the_hub_dataset_only_when_the_local_files_are_a_copy_of_it(tmp_path):
    """The SQuAD preset trains on local SQuADShifts files with rajpurkar/squad as a fallback only: the card must
    not claim SQuAD as its training data. Its dev file (qa/squad/...) is a SQuAD copy and keeps the Hub id."""
    from huggingface_hub import ModelCard

    shifts = ["qa/squadshifts/new_wiki_v1.0.json", "qa/squadshifts/reddit_v1.0.json"]
    task = {"type": "extractive_qa", "preset": "squad", "version": "v1",
            "train": {"path": shifts, "hub_name": "rajpurkar/squad", "split": "train"},
            "eval": {"dev": {"path": "qa/squad/dev-v1.1-half-a.json", "hub_name": "rajpurkar/squad",
                             "split": "validation"}}}
    d = _write(tmp_path / "squad", config__json={"model_type": "bert", "architectures": ["BertForQuestionAnswering"]},
               config__yaml={"model": "runs/enc", "init": "pretrained", "task": task, "max_eval_samples": 500},
               run_info__json={"command": "finetune-qa"},
               metrics__json={"learning_rate": 1e-3, "seed": 1, "train_questions": 4000, "steps": 300,
                              "eval": {"dev": {"exact_match": 3.0, "f1": 7.5}}})
    card = ModelCard.load(write_model_card(d, hardware="CPU"))
    assert card.data.datasets is None  # not rajpurkar/squad: the training files are SQuADShifts
    assert "rajpurkar/squad" not in card.text.split("## Evaluation")[0].split("## Training")[1]
    assert "| training data | `qa/squadshifts/new_wiki_v1.0.json`, `qa/squadshifts/reddit_v1.0.json` (local files) |" in card.text
    ev = card.data.eval_results
    assert [(r.dataset_type, r.dataset_split, r.metric_type) for r in ev] == [
        ("rajpurkar/squad", "validation", "exact_match"), ("rajpurkar/squad", "validation", "f1")]
    assert ev[0].dataset_name == "rajpurkar/squad, dev split (local copy dev-v1.1-half-a.json) (first 500 examples)"
    # GLUE files under glue/sst2/ are that data set's copy: the Hub id stays
    ft = finetuned_dir(tmp_path, "ft", 1e-3, 1, 0.9, "google/electra-small-discriminator")
    assert ModelCard.load(write_model_card(ft)).data.datasets == ["nyu-mll/glue"]


def test_share_keeps_a_complete_run_complete(tmp_path):
    """share() rewrites the card (now naming the repository) after the run's completeness marker was written:
    the marker must record the new card, or a finished fine-tuning run reads as incomplete."""
    from nlp_ssl.atomic import is_complete, write_marker
    from nlp_ssl.hub.push import HubConfig, share

    d = encoder_dir(tmp_path)
    write_model_card(d, hardware="CPU")
    write_marker(d)
    assert is_complete(d)
    share(d, HubConfig(push=False, repo_id="someone/tiny-encoder"))
    assert "someone/tiny-encoder" in (d / "README.md").read_text()
    assert is_complete(d)


def test_the_card_loads_what_the_maker_recorded_not_what_the_objective_name_suggests(tmp_path):
    """An ELECTRA encoder (before: `pipeline_tag: text-generation` and AutoModelForCausalLM, guessed from 'not mlm'):
    the card follows run_info.json's artifact."""
    from huggingface_hub import ModelCard

    d = encoder_dir(tmp_path)
    _write(d, config__json={"model_type": "electra", "architectures": ["ElectraForPreTraining"]},
           config__yaml={**ENCODER_CFG, "objective": {"task": "electra"}},
           run_info__json={"command": "pretrain", "artifact": {
               "auto_class": "AutoModelForPreTraining", "pipeline_tag": None,
               "description": "an ELECTRA discriminator"}})
    card = ModelCard.load(write_model_card(d, hardware="CPU"))
    assert card.data.pipeline_tag is None and "text-generation" not in card.content
    assert "model = AutoModelForPreTraining.from_pretrained(repo)" in card.text
    assert "AutoModelForCausalLM" not in card.text
    assert "Saved as an ELECTRA discriminator." in card.text and "replaced-token detection (ELECTRA)" in card.text
    # the same directory without the record (written before it existed): its architecture, never the objective name
    _write(d, run_info__json={"command": "pretrain"})
    assert artifact_of(d).auto_class == "AutoModelForPreTraining"
    assert ModelCard.load(write_model_card(d, hardware="CPU")).data.pipeline_tag is None
    # SimCSE's bare encoder: feature extraction
    _write(d, config__json={"model_type": "bert", "architectures": ["BertModel"]},
           config__yaml={**ENCODER_CFG, "objective": {"task": "simcse"}})
    card = ModelCard.load(write_model_card(d, hardware="CPU"))
    assert card.data.pipeline_tag == "feature-extraction" and "model = AutoModel.from_pretrained(repo)" in card.text
    # nothing recorded at all: the bare encoder, which AutoModel loads from any checkpoint
    _write(d, config__json={"model_type": "bert"})
    assert (artifact_of(d).auto_class, artifact_of(d).pipeline_tag) == ("AutoModel", "feature-extraction")


@pytest.mark.parametrize("model_type", ["bert", "roberta", "electra", "modernbert"])
def test_the_architecture_naming_rule_agrees_with_transformers_auto_mappings(model_type):
    """`auto_class_for` reads the Auto class from the architecture's name (no transformers import in a card);
    for the encoders nlp-ssl builds it must give the Auto class whose mapping holds that architecture."""
    from transformers.models.auto import modeling_auto as m

    mappings = {"AutoModel": m.MODEL_MAPPING_NAMES, "AutoModelForMaskedLM": m.MODEL_FOR_MASKED_LM_MAPPING_NAMES,
                "AutoModelForCausalLM": m.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                "AutoModelForPreTraining": m.MODEL_FOR_PRETRAINING_MAPPING_NAMES,
                "AutoModelForSequenceClassification": m.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
                "AutoModelForQuestionAnswering": m.MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES,
                "AutoModelForTokenClassification": m.MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES}
    checked = 0
    for auto, mapping in mappings.items():
        arch = mapping.get(model_type)
        if arch is None or (auto == "AutoModelForPreTraining" and not arch.endswith("ForPreTraining")):
            continue  # RoBERTa's "pre-training" class is its masked LM, named as such
        assert auto_class_for(arch) == auto, arch
        checked += 1
    assert checked >= 5
    assert auto_class_for("BertLMHeadModel") == "AutoModelForCausalLM" and auto_class_for("Whatever") is None
