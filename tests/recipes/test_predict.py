"""`task.predict` in fine-tuning and `nlp-ssl predict MODEL_DIR`: the same GLUE submission for SST-2's test file."""

from __future__ import annotations

import pytest

from nlp_ssl.cli import main as cli
from nlp_ssl.config import from_dict
from nlp_ssl.recipes.finetune import FinetuneConfig, main


def test_finetune_writes_a_submission_and_predict_reproduces_it(tmp_path, tiny_encoder_dir, data_dir, capsys,
                                                                 monkeypatch):
    test = {"path": "glue/sst2/test.tsv", "max_examples": 30}
    task = {"preset": "sst2", "held_out_unit": "example", "max_length": 32, "train": {"path": "glue/sst2/train.tsv", "max_examples": 64},
            "eval": {"dev": {"path": "glue/sst2/dev.tsv", "max_examples": 16}}, "predict": {"test": test},
            "held_out": {"selection": 0.2}}  # 64 phrases: the preset's 2% of whole sentences could be empty
    cfg = from_dict(FinetuneConfig, {"output_dir": str(tmp_path / "run"), "model": str(tiny_encoder_dir), "task": task,
                                     "train": {"learning_rate": [1e-3], "max_steps": 2, "per_device_train_batch_size": 16,
                                               "logging_steps": 100}})
    main(cfg, data_dir)
    lines = (tmp_path / "run" / "submission-test.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 31
    assert [line.split("\t")[0] for line in lines[1:]] == [str(i) for i in range(30)]
    assert {line.split("\t")[1] for line in lines[1:]} <= {"0", "1"}  # GLUE's SST-2 labels are ids

    import torch

    import nlp_ssl.distributed
    import nlp_ssl.tasks.inference

    asked = []  # prediction runs where eval_device says (the GPU when there is one; none here)
    monkeypatch.setattr(nlp_ssl.tasks.inference, "eval_device", lambda: asked.append(1) or torch.device("cpu"))
    out = tmp_path / "SST-2.tsv"
    rc = cli(["predict", str(tmp_path / "run"), "input.path=glue/sst2/test.tsv", "input.max_examples=30",
              f"output={out}", "--data-dir", data_dir])
    assert rc == 0 and out.read_text().splitlines() == lines and asked
    assert "wrote 30 predictions" in capsys.readouterr().out
    names = tmp_path / "names.tsv"
    assert cli(["predict", str(tmp_path / "run"), "input.path=glue/sst2/test.tsv", "input.max_examples=3",
                f"output={names}", "glue_labels=false", "--data-dir", data_dir]) == 0
    assert {line.split("\t")[1] for line in names.read_text().splitlines()[1:]} <= {"negative", "positive"}

    # under `accelerate launch` a rank other than 0 predicts (its share, gathered) but writes nothing: neither the
    # submission nor evaluate's files (every rank wrote them, racing on one path)
    from nlp_ssl.recipes.evaluate import EvaluateConfig
    from nlp_ssl.recipes.evaluate import main as evaluate

    monkeypatch.setattr(nlp_ssl.distributed, "is_main_process", lambda: False)
    other = tmp_path / "rank1.tsv"
    assert cli(["predict", str(tmp_path / "run"), "input.path=glue/sst2/test.tsv", "input.max_examples=3",
                f"output={other}", "--data-dir", data_dir]) == 0
    assert not other.exists()
    ev = evaluate(from_dict(EvaluateConfig, {"model": str(tmp_path / "run"), "output_dir": str(tmp_path / "ev1")}), data_dir)
    assert 0 <= ev["eval"]["dev"]["accuracy"] <= 1 and not (tmp_path / "ev1").exists()


def test_predict_names_a_missing_text_column(tmp_path, tiny_encoder_dir, data_dir, capsys):
    rc = cli(["predict", str(tiny_encoder_dir), "input.path=glue/sst2/test.tsv", f"output={tmp_path / 'x.tsv'}",
              "--data-dir", data_dir])
    assert rc == 3 and "text_columns: " in capsys.readouterr().err  # an encoder without a fine-tuned task
