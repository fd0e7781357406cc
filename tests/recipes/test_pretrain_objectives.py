"""`nlp-ssl pretrain` with each registered objective on a tiny model and real-data blocks: the run trains, its
checkpoints and final artifacts are the standard ones, and they load with plain transformers (no nlp_ssl)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.recipes.pretrain import PretrainConfig, main

TINY = {"arch": "bert", "preset": "tiny", "num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64}


@pytest.fixture(scope="module")
def blocks(tmp_path_factory, tiny_tokenizer_dir, wiki_slice):
    from nlp_ssl.recipes.prepare import PrepareConfig
    from nlp_ssl.recipes.prepare import main as prepare

    out = tmp_path_factory.mktemp("blocks") / "wiki-32"
    prepare(from_dict(PrepareConfig, {"output_dir": str(out), "tokenizer": str(tiny_tokenizer_dir),
                                      "data": {"path": str(wiki_slice), "max_examples": 40}, "block_size": 32,
                                      "validation_fraction": 0.1, "progress": False}))
    return out


def cfg(tmp_path, blocks, objective, name="run", model=None, **train):
    t = {"per_device_train_batch_size": 8, "learning_rate": 3e-3, "max_steps": 4, "eval_steps": 0, "save_steps": 0,
         "logging_steps": 1, "max_eval_samples": 16, "report_to": ["none"], "warmup_ratio": 0.0, **train}
    return from_dict(PretrainConfig, {"output_dir": str(tmp_path / name), "data": str(blocks),
                                      "model": {**TINY, **(model or {})}, "objective": objective, "train": t})


def run_plain(code: str) -> str:
    """Run `code` in a fresh interpreter; its last line must print whether nlp_ssl was imported."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return r.stdout.strip() + r.stderr[-2000:]


def test_electra_trains_and_saves_discriminator_and_generator(tmp_path, blocks):
    metrics = main(cfg(tmp_path, blocks, {"task": "electra", "electra": {"generator_width": 0.5}}, save_steps=2))
    out = tmp_path / "run"
    assert metrics["steps"] == 4 and 0 <= metrics["eval_rtd_accuracy"] <= 1 and 0 <= metrics["eval_mlm_accuracy"] <= 1
    assert 0 < metrics["eval_replaced_share"] < 0.15 and "eval_perplexity" not in metrics
    assert {"model.safetensors", "config.json", "tokenizer.json", "metrics.json"} <= {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in (out / "generator").iterdir()}
    ckpt = out / "checkpoints" / "checkpoint-2"  # checkpoints hold the same two artifacts (and resume from them)
    assert (ckpt / "model.safetensors").exists() and (ckpt / "generator" / "model.safetensors").exists()
    assert json.loads((out / "config.json").read_text())["architectures"] == ["ElectraForPreTraining"]
    assert json.loads((out / "generator" / "config.json").read_text())["hidden_size"] == 16
    code = (
        "import sys, torch\n"
        "from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForQuestionAnswering, "
        "ElectraForPreTraining, pipeline\n"
        f"d = {str(out)!r}\n"
        "enc = AutoModel.from_pretrained(d); disc = ElectraForPreTraining.from_pretrained(d)\n"
        "assert torch.equal(enc.embeddings.word_embeddings.weight, disc.electra.embeddings.word_embeddings.weight)\n"
        "AutoModelForSequenceClassification.from_pretrained(d, num_labels=2)\n"
        "AutoModelForQuestionAnswering.from_pretrained(d)\n"
        "gen = pipeline('fill-mask', model=d + '/generator')\n"
        "out = gen('the city is [MASK] .')\n"
        "assert len(out) == 5 and all('[MASK]' not in o['sequence'] for o in out)\n"
        "g = gen.model.electra.embeddings.word_embeddings.weight\n"
        "assert torch.equal(g, disc.electra.embeddings.word_embeddings.weight)  # saved shared\n"
        "print('OK', 'nlp_ssl' in sys.modules)\n"
    )
    assert run_plain(code).startswith("OK False")


def test_simcse_stage_after_mlm_saves_an_encoder_with_its_pooling(tmp_path, blocks, tiny_encoder_dir):
    from safetensors.torch import load_file

    metrics = main(cfg(tmp_path, blocks, {"task": "simcse", "simcse": {"max_length": 16}}, max_steps=3,
                       model={"init_from": str(tiny_encoder_dir)}))
    out = tmp_path / "run"
    assert metrics["steps"] == 3 and 0 <= metrics["eval_top1"] <= 1 and "eval_perplexity" not in metrics
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["sentence_pooling"] == "cls"
    assert config["hidden_dropout_prob"] == 0.1  # SimCSE's dropout, not the encoder's 0
    before = load_file(str(tiny_encoder_dir / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not __import__("torch").equal(before["bert." + layer], after[layer])  # init_from was trained on
    assert (out / "simcse_mlp.safetensors").exists()
    code = ("import sys\nfrom transformers import AutoModel, AutoModelForSequenceClassification\n"
            f"AutoModel.from_pretrained({str(out)!r}); AutoModelForSequenceClassification.from_pretrained({str(out)!r})\n"
            "print('OK', 'nlp_ssl' in sys.modules)\n")
    assert run_plain(code).startswith("OK False")


@pytest.fixture(scope="module")
def document_blocks(tmp_path_factory, tiny_tokenizer_dir, wiki_slice):
    from nlp_ssl.recipes.prepare import PrepareConfig
    from nlp_ssl.recipes.prepare import main as prepare

    out = tmp_path_factory.mktemp("blocks") / "wiki-docs-32"
    prepare(from_dict(PrepareConfig, {"output_dir": str(out), "tokenizer": str(tiny_tokenizer_dir),
                                      "data": {"path": str(wiki_slice), "max_examples": 40}, "block_size": 32,
                                      "validation_fraction": 0.1, "progress": False, "layout": "documents"}))
    return out


def test_mlm_with_sentence_order_on_document_blocks(tmp_path, blocks, document_blocks):
    from nlp_ssl.errors import DataError

    with pytest.raises(DataError, match="layout: documents"):
        main(cfg(tmp_path, blocks, {"task": "mlm", "sentence_order": True}, name="stream"))
    metrics = main(cfg(tmp_path, document_blocks, {"task": "mlm", "sentence_order": True}, save_steps=2))
    out = tmp_path / "run"
    assert 0 <= metrics["eval_sentence_order_accuracy"] <= 1 and 0 <= metrics["eval_mlm_accuracy"] <= 1
    assert (out / "sentence_order_head.safetensors").exists()
    assert (out / "checkpoints" / "checkpoint-2" / "sentence_order_head.safetensors").exists()
    code = (
        "import sys\nfrom transformers import pipeline\n"
        f"out = pipeline('fill-mask', model={str(out)!r})('the city is [MASK] .')\n"
        "assert len(out) == 5\nprint('OK', 'nlp_ssl' in sys.modules)\n")
    assert run_plain(code).startswith("OK False")


def test_plain_mlm_trains_on_document_blocks(tmp_path, document_blocks):
    metrics = main(cfg(tmp_path, document_blocks, {"task": "mlm"}, max_steps=2))
    assert metrics["steps"] == 2 and 0 <= metrics["eval_mlm_accuracy"] <= 1


def test_electra_resume_equals_uninterrupted_run(tmp_path, blocks):
    """The wrapper's own checkpoint hooks (save_pretrained / load_checkpoint) restore both models exactly."""
    import shutil

    import torch
    from safetensors.torch import load_file

    electra = {"task": "electra", "electra": {"generator_width": 0.5}}
    main(cfg(tmp_path, blocks, electra, name="straight", max_steps=4, save_steps=2))
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    for f in (tmp_path / "resumed").iterdir():  # "killed" after step 2 (generator/ of a half-finished save stays)
        if f.is_file() and f.name not in ("config.yaml", "run_info.json"):
            f.unlink()
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "checkpoint-4")
    metrics = main(cfg(tmp_path, blocks, electra, name="resumed", max_steps=4, save_steps=2, resume=True))
    assert metrics["steps"] == 4
    for part in ("model.safetensors", "generator/model.safetensors"):
        a, b = load_file(str(tmp_path / "straight" / part)), load_file(str(tmp_path / "resumed" / part))
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)


MODERN = {"arch": "modernbert", "num_layers": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64}


def test_modernbert_electra_trains_saves_loadable_models_and_resumes_exactly(tmp_path, blocks):
    """Pre-norm ELECTRA: the encoder saved as a plain ModernBertModel, the generator as a ModernBertForMaskedLM that
    fill-mask loads, and a run killed after step 2 resumes to the uninterrupted run's weights."""
    import shutil

    import torch
    from safetensors.torch import load_file

    electra = {"task": "electra"}
    metrics = main(cfg(tmp_path, blocks, electra, name="straight", model=MODERN, max_steps=4, save_steps=2))
    out = tmp_path / "straight"
    assert metrics["steps"] == 4 and 0 <= metrics["eval_rtd_accuracy"] <= 1 and 0 < metrics["eval_replaced_share"] < 0.15
    assert json.loads((out / "config.json").read_text())["architectures"] == ["ModernBertModel"]
    assert (out / "rtd_head.safetensors").exists() and (out / "generator" / "embedding_projection.safetensors").exists()
    code = (
        "import sys, torch\n"
        "from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForQuestionAnswering, pipeline\n"
        f"d = {str(out)!r}\n"
        "enc = AutoModel.from_pretrained(d)\n"
        "assert type(enc).__name__ == 'ModernBertModel'\n"
        "c = AutoModelForSequenceClassification.from_pretrained(d, num_labels=2)\n"
        "assert torch.equal(c.model.embeddings.tok_embeddings.weight, enc.embeddings.tok_embeddings.weight)\n"
        "assert c.classifier.weight.shape == (2, 32)\n"
        "AutoModelForQuestionAnswering.from_pretrained(d)\n"
        "gen = pipeline('fill-mask', model=d + '/generator')\n"
        "res = gen('the city is [MASK] .')\n"
        "assert len(res) == 5 and all('[MASK]' not in o['sequence'] for o in res)\n"
        "print('OK', 'nlp_ssl' in sys.modules)\n"
    )
    assert run_plain(code).startswith("OK False")

    from safetensors.torch import load_file as load

    assert {"head.dense.weight", "head.norm.weight"} <= set(load(str(out / "model.safetensors")))  # the Auto heads' start
    shutil.copytree(out, tmp_path / "resumed")
    for f in [*(tmp_path / "resumed").iterdir(), *(tmp_path / "resumed" / "generator").iterdir()]:  # "killed" after step 2
        if f.is_file() and f.name not in ("config.yaml", "run_info.json"):
            f.unlink()
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "checkpoint-4")
    metrics = main(cfg(tmp_path, blocks, electra, name="resumed", model=MODERN, max_steps=4, save_steps=2, resume=True))
    assert metrics["steps"] == 4
    for part in ("model.safetensors", "rtd_head.safetensors", "generator/model.safetensors",
                 "generator/embedding_projection.safetensors"):
        a, b = load_file(str(out / part)), load_file(str(tmp_path / "resumed" / part))
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)


def test_modernbert_mlm_with_sentence_order(tmp_path, document_blocks):
    """ModernBERT has no token types: the order pairs go in without them and the saved model is a plain MLM."""
    metrics = main(cfg(tmp_path, document_blocks, {"task": "mlm", "sentence_order": True}, model=MODERN, max_steps=2))
    out = tmp_path / "run"
    assert 0 <= metrics["eval_sentence_order_accuracy"] <= 1 and 0 <= metrics["eval_mlm_accuracy"] <= 1
    assert json.loads((out / "config.json").read_text())["architectures"] == ["ModernBertForMaskedLM"]
    assert (out / "sentence_order_head.safetensors").exists()


def test_modernbert_sentence_order_batches_carry_no_token_types(document_blocks, tiny_tokenizer_dir):
    """ModernBERT's forward swallows unknown keyword arguments, so the collator itself must leave token types out."""
    import datasets

    from nlp_ssl.modeling import ModelConfig
    from nlp_ssl.objectives.registry import ObjectiveConfig, build_objective
    from nlp_ssl.tokenization import load_tokenizer

    blocks = datasets.load_from_disk(str(document_blocks))
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    for model, has_types in ((MODERN, False), (TINY, True)):
        setup = build_objective(ObjectiveConfig(task="mlm", sentence_order=True), ModelConfig(**model), tok, blocks,
                                eval_blocks=8)
        batch = setup.collator([blocks["train"][i] | {"idx": i} for i in range(4)])
        assert {"input_ids", "labels", "sentence_order_label", "attention_mask"} <= set(batch)
        assert ("token_type_ids" in batch) == has_types
