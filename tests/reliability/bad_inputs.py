"""The bad-input catalogue: inputs a careful new user gets wrong, across all commands, each with the error class,
exit code and message that `nlp-ssl` must answer with. `test_bad_inputs.py` runs every entry as a test;
run this file to count how the installed code answers (and to print the docs table):

    PYTHONPATH=. python tests/reliability/bad_inputs.py            # counts: clear / traceback / silently accepted
    PYTHONPATH=. python tests/reliability/bad_inputs.py --table    # the markdown table of docs/errors.md
    PYTHONPATH=. python tests/reliability/bad_inputs.py ID ...     # only these entries

A result is *clear* when the command fails without a traceback, *traceback* when a raw Python traceback
reaches the user, *silent* when the command succeeds (the bad input was accepted or silently misread).
Every entry runs `nlp_ssl.cli.main` in-process on a tiny workspace (tokenizer, corpus, encoder, classifier and
QA model trained for a few steps), so the whole catalogue takes about a minute on a CPU.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

DATA_DIR = Path(os.environ.get("NLP_SSL_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data"))
WIKI_00 = "corpus/wikipedia-en-2015/part-00.jsonl.gz"

EXIT = {"ConfigError": 3, "DataError": 4, "OutputError": 5, "ModelError": 6, "HubError": 8, "usage": 2}


@dataclass
class Case:
    id: str
    command: str
    bad_input: str  # what the user did, in words
    argv: Callable[["Workspace"], list[str]]
    error: str  # expected class (or "usage" for argparse)
    message: str  # regular expression the message must match
    setup: Callable[["Workspace"], None] | None = None
    check: Callable[["Workspace"], None] | None = None  # afterwards: e.g. nothing was destroyed


@dataclass
class Result:
    case: Case
    rc: int | None
    stderr: str
    outcome: str = field(init=False)  # clear / traceback / silent

    def __post_init__(self):
        if self.rc == 0:
            self.outcome = "silent"
        elif "Traceback (most recent call last)" in self.stderr:
            self.outcome = "traceback"
        else:
            self.outcome = "clear"


class Workspace:
    """A temporary folder with tiny, real artifacts of every command: the inputs of the bad-input cases."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.cfg = root / "cfg"
        for d in (self.data, self.cfg):
            d.mkdir(parents=True, exist_ok=True)

    def p(self, name: str) -> str:
        return str(self.root / name)

    def write_yaml(self, name: str, data) -> str:
        path = self.cfg / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return str(path)

    def config(self, name: str) -> dict:
        return yaml.safe_load((self.cfg / name).read_text())

    def variant(self, base: str, name: str, **top) -> str:
        """A copy of config `base` with top-level keys replaced."""
        return self.write_yaml(name, {**self.config(base), **top})

    # --- tiny artifacts -----------------------------------------------------------------------------
    def build(self) -> None:
        docs = []
        with gzip.open(DATA_DIR / WIKI_00, "rt", encoding="utf-8") as f:
            for line in f:
                docs.append(json.loads(line))
                if len(docs) == 30:
                    break
        with open(self.data / "wiki.jsonl", "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d["text"][:6000]}) + "\n")
        rows = [("a good and charming film", "positive"), ("a dull and tiresome mess", "negative")] * 40
        (self.data / "cls.csv").write_text("text,label\n" + "".join(f"{t} {i},{lab}\n" for i, (t, lab) in enumerate(rows)))
        (self.data / "squad.json").write_text(json.dumps(squad(8)))

        tok = {"output_dir": self.p("tok"), "data": {"path": str(self.data / "wiki.jsonl")},
               "tokenizer": {"model": "wordpiece", "vocab_size": 1000, "model_max_length": 128}}
        self.write_yaml("tok.yaml", tok)
        self.write_yaml("tok2.yaml", {**tok, "output_dir": self.p("tok2"),
                                      "tokenizer": {**tok["tokenizer"], "vocab_size": 1200}})
        prep = {"output_dir": self.p("blocks"), "tokenizer": self.p("tok"), "data": {"path": str(self.data / "wiki.jsonl")},
                "block_size": 32, "validation_fraction": 0.1, "progress": False, "num_proc": 1}
        self.write_yaml("prep.yaml", prep)
        pre = {"output_dir": self.p("enc"), "data": self.p("blocks"),
               "model": {"arch": "bert", "preset": "tiny", "num_layers": 1, "hidden_size": 32, "num_heads": 2,
                         "intermediate_size": 64, "max_position_embeddings": 128},
               "train": {"per_device_train_batch_size": 8, "max_steps": 2, "eval_steps": 0, "save_steps": 0,
                         "logging_steps": 1, "max_eval_samples": 8, "report_to": ["none"]}}
        self.write_yaml("pre.yaml", pre)
        src = {"path": str(self.data / "cls.csv")}
        ft = {"output_dir": self.p("clf"), "model": self.p("enc"),
              "task": {"train": src, "eval": {"dev": src}, "text_columns": ["text"], "label_column": "label",
                       "metrics": ["accuracy"], "max_length": 32},
              "train": {"learning_rate": [1e-3], "per_device_train_batch_size": 16, "max_steps": 2, "logging_steps": 1}}
        self.write_yaml("ft.yaml", ft)
        qsrc = {"path": str(self.data / "squad.json")}
        qa = {"output_dir": self.p("qa"), "model": self.p("enc"),
              "task": {"type": "extractive_qa", "version": "v1", "train": qsrc, "eval": {"dev": qsrc},
                       "max_length": 64, "doc_stride": 16, "max_query_length": 16},
              "train": {"learning_rate": [1e-3], "per_device_train_batch_size": 8, "max_steps": 2, "logging_steps": 1}}
        self.write_yaml("qa.yaml", qa)
        for cmd, cfg in (("train-tokenizer", "tok.yaml"), ("train-tokenizer", "tok2.yaml"), ("prepare", "prep.yaml"),
                         ("pretrain", "pre.yaml"), ("finetune", "ft.yaml"), ("finetune", "qa.yaml")):
            r = run([cmd, str(self.cfg / cfg)])
            if r[0] != 0:
                raise RuntimeError(f"building the workspace failed at {cmd} {cfg}:\n{r[1][-3000:]}")


def squad(n: int, **override) -> dict:
    """A small, valid SQuAD v1.1 file (n questions); `override` changes the first question's fields."""
    qas = []
    context = "The Eiffel Tower is in Paris. It was finished in 1889 and is 330 metres tall."
    for i in range(n):
        q = {"id": f"q{i}", "question": ["Where is the tower?", "When was it finished?"][i % 2],
             "answers": [{"text": ["Paris", "1889"][i % 2], "answer_start": context.index(["Paris", "1889"][i % 2])}]}
        qas.append(q)
    qas[0].update(override)
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


def run(argv: list[str]) -> tuple[int | None, str]:
    """`nlp-ssl ARGV` in-process -> (exit code, stderr + stdout); an exception escaping main counts as a
    traceback (as it would reach the user)."""
    from nlp_ssl.cli import main

    err, out = io.StringIO(), io.StringIO()
    rc: int | None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(list(argv))
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001 - what a user would see as a raw traceback
            traceback.print_exc(file=err)
            rc = 1
    return rc, err.getvalue() + out.getvalue()


def _write(ws: Workspace, name: str, text: str | bytes) -> str:
    path = ws.data / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _file(ws: Workspace, name: str) -> str:
    path = ws.root / name
    path.write_text("a user's file\n")
    return str(path)


def _user_folder(ws: Workspace, name: str) -> str:
    path = ws.root / name
    path.mkdir(exist_ok=True)
    (path / "notes.txt").write_text("a user's notes\n")
    return str(path)


def _copy_file(ws: Workspace, name: str, to: str) -> str:
    (ws.data / to).write_bytes((ws.data / name).read_bytes())
    return str(ws.data / to)


def _copy(ws: Workspace, name: str, to: str) -> str:
    import shutil

    shutil.copytree(ws.root / name, ws.root / to, dirs_exist_ok=True)
    return str(ws.root / to)


# ----------------------------------------------------------------------------------------------------------
# The catalogue


def cases() -> list[Case]:
    C = []

    def add(*a, **k):
        C.append(Case(*a, **k))

    # --- config files and overrides (every command) ---
    add("config-missing", "prepare", "config path that does not exist", lambda w: ["prepare", w.p("nope.yaml")],
        "ConfigError", r"config file not found: .*nope\.yaml")
    add("config-yaml-syntax", "pretrain", "YAML syntax error", lambda w: ["pretrain", _write(w, "bad.yaml", "a: [1, 2\nb: 3\n")],
        "ConfigError", r"YAML syntax error at line \d+")
    add("config-unknown-key", "prepare", "misspelt key (override)", lambda w: ["prepare", str(w.cfg / "prep.yaml"), "block_sise=64"],
        "ConfigError", r"block_sise: unknown key; did you mean 'block_size'")
    add("config-wrong-type", "prepare", "text where a number belongs", lambda w: ["prepare", str(w.cfg / "prep.yaml"), "block_size=big"],
        "ConfigError", r"block_size: expected int, got 'big'")
    add("config-duplicate-key", "pretrain", "the same key twice in one YAML mapping",
        lambda w: ["pretrain", _write(w, "dup.yaml", (w.cfg / "pre.yaml").read_text() + "data: elsewhere\n")],
        "ConfigError", r"line \d+.*'data' appears twice")
    add("config-not-mapping", "train-tokenizer", "a YAML list instead of a mapping",
        lambda w: ["train-tokenizer", _write(w, "list.yaml", "- a\n- b\n")], "ConfigError", r"top level must be a mapping")
    add("config-required-missing", "prepare", "required key left out",
        lambda w: ["prepare", _write(w, "noout.yaml", "tokenizer: x\ndata: {path: y}\n")], "ConfigError",
        r"output_dir: required key is missing")
    add("override-no-equals", "prepare", "override without `=`", lambda w: ["prepare", str(w.cfg / "prep.yaml"), "block_size"],
        "ConfigError", r"must look like key=value")
    add("override-after-data-dir", "prepare", "override after --data-dir (must still apply)",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), "--data-dir", str(w.data), "block_size=1"],
        "ConfigError", r"block_size: must be at least 2")
    add("not-utf8-config", "prepare", "config saved in Latin-1",
        lambda w: ["prepare", _write(w, "latin.yaml", "output_dir: caf\xe9\n".encode("latin-1"))],
        "ConfigError", r"not UTF-8")

    # --- train-tokenizer ---
    add("tok-output-is-file", "train-tokenizer", "output_dir is an existing file",
        lambda w: ["train-tokenizer", str(w.cfg / "tok.yaml"), f"output_dir={_file(w, 'tokfile')}"],
        "OutputError", r"is a file, not a folder", check=lambda w: _assert_file(w.root / "tokfile"))
    add("tok-output-user-folder", "train-tokenizer", "output_dir holds a user's files",
        lambda w: ["train-tokenizer", str(w.cfg / "tok.yaml"), f"output_dir={_user_folder(w, 'notes')}"],
        "OutputError", r"files that nlp-ssl did not write.*overwrite=true", check=lambda w: _assert_file(w.root / "notes" / "notes.txt"))
    add("tok-data-missing", "train-tokenizer", "data file that does not exist",
        lambda w: ["train-tokenizer", str(w.cfg / "tok.yaml"), "output_dir=OUT", "data.path=missing.jsonl", "--data-dir", str(w.data)],
        "DataError", r"file not found: .*missing\.jsonl")
    add("tok-vocab-negative", "train-tokenizer", "tokenizer.vocab_size=-5",
        lambda w: ["train-tokenizer", str(w.cfg / "tok.yaml"), "tokenizer.vocab_size=-5"], "ConfigError", r"vocab_size")
    add("tok-empty-text", "train-tokenizer", "a corpus whose text column is empty",
        lambda w: ["train-tokenizer", str(w.cfg / "tok.yaml"), "output_dir=OUT",
                   "data.path=" + _write(w, "blank.jsonl", '{"text": ""}\n' * 3)],
        "DataError", r"holds no usable text")

    # --- prepare ---
    add("prep-tokenizer-missing", "prepare", "tokenizer directory that does not exist",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), f"tokenizer={w.p('no-tok')}"], "ModelError", r"tokenizer not found")
    add("prep-data-missing", "prepare", "data file that does not exist",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), "output_dir=OUT", "data.path=nowhere.jsonl"],
        "DataError", r"file not found: .*nowhere\.jsonl")
    add("prep-block-too-long", "prepare", "block_size above the tokenizer's model_max_length",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), "block_size=512"], "ConfigError", r"block_size: 512 is larger")
    add("prep-output-is-tokenizer", "prepare", "output_dir pointed at its own tokenizer directory",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), f"output_dir={_copy(w, 'tok', 'tokc')}", f"tokenizer={w.p('tokc')}"],
        "OutputError", r"holds this run's input \(tokenizer", check=lambda w: _assert_file(w.root / "tokc" / "tokenizer.json"))
    add("prep-output-user-folder", "prepare", "output_dir holds a user's files",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), f"output_dir={_user_folder(w, 'mine')}"], "OutputError",
        r"files that nlp-ssl did not write", check=lambda w: _assert_file(w.root / "mine" / "notes.txt"))
    add("prep-jsonl-bad-line", "prepare", "JSON-lines file with a broken line 3",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), "output_dir=OUT",
                   "data.path=" + _write(w, "broken.jsonl", '{"text": "a b c"}\n{"text": "d e"}\n{"text": "oops\n')],
        "DataError", r"broken\.jsonl.*line 3")
    add("prep-text-column-missing", "prepare", "text_column not in the file",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), "output_dir=OUT", "data.text_column=body"],
        "DataError", r"no column 'body'")
    add("prep-not-utf8", "prepare", "corpus file with Latin-1 bytes",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), "output_dir=OUT",
                   f"data.path={_write(w, 'latin.txt', 'caf'.encode() + bytes([0xe9]) + b' au lait' + bytes([10]))}"],
        "DataError", r"latin\.txt.*line 1")
    add("prep-empty-file", "prepare", "empty corpus file",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), "output_dir=OUT", f"data.path={_write(w, 'empty.txt', '')}"],
        "DataError", r"empty")
    add("prep-validation-fraction", "prepare", "validation_fraction=1.5",
        lambda w: ["prepare", str(w.cfg / "prep.yaml"), "validation_fraction=1.5"], "ConfigError", r"validation_fraction: must be in \[0, 1\)")

    # --- pretrain ---
    pre = lambda *o: (lambda w: ["pretrain", str(w.cfg / "pre.yaml"), "output_dir=OUT", *o])  # noqa: E731
    add("pre-adam-beta2", "pretrain", "train.adam_beta2=1.5", pre("train.adam_beta2=1.5"), "ConfigError", r"adam_beta2: must be in \[0, 1\)")
    add("pre-max-grad-norm", "pretrain", "train.max_grad_norm=-1", pre("train.max_grad_norm=-1"), "ConfigError", r"max_grad_norm: must be 0 \(off\) or positive")
    add("pre-weight-decay", "pretrain", "train.weight_decay=-0.1", pre("train.weight_decay=-0.1"), "ConfigError", r"weight_decay: must be 0 or more")
    add("pre-save-steps", "pretrain", "train.save_steps=-5", pre("train.save_steps=-5"), "ConfigError", r"save_steps: must be 0 \(only the final model\) or positive")
    add("pre-eval-steps", "pretrain", "train.eval_steps=-1", pre("train.eval_steps=-1"), "ConfigError", r"eval_steps: must be 0")
    add("pre-batch-zero", "pretrain", "train.per_device_train_batch_size=0", pre("train.per_device_train_batch_size=0"), "ConfigError", r"per_device_train_batch_size: must be at least 1")
    add("pre-resume-and-overwrite", "pretrain", "train.resume and overwrite both true",
        pre("train.resume=true", "overwrite=true"), "ConfigError", r"overwrite and train.resume: choose one")
    add("pre-old-key-name", "pretrain", "train.per_device_batch_size=8 (the name before one vocabulary)",
        pre("train.per_device_batch_size=8"), "ConfigError", r"train.per_device_batch_size: renamed; write 'train.per_device_train_batch_size'")
    add("pre-moved-key", "pretrain", "train.overwrite=true (moved to the top level)", pre("train.overwrite=true"),
        "ConfigError", r"train.overwrite: renamed; write 'overwrite'")
    add("pre-data-not-prepared", "pretrain", "data: a folder that `prepare` did not write", pre(f"data=/nonexistent/blocks"),
        "DataError", r"holds no prepared corpus")
    add("pre-tokenizer-mismatch", "pretrain", "tokenizer: another tokenizer than the corpus was prepared with (larger vocabulary)",
        pre("tokenizer=TOK2"),
        "ModelError", r"is not the tokenizer .* was prepared with")
    add("pre-output-is-file", "pretrain", "output_dir is an existing file",
        lambda w: ["pretrain", str(w.cfg / "pre.yaml"), f"output_dir={_file(w, 'prefile')}"], "OutputError", r"is a file, not a folder")
    add("pre-output-user-folder", "pretrain", "output_dir holds a user's files",
        lambda w: ["pretrain", str(w.cfg / "pre.yaml"), f"output_dir={_user_folder(w, 'docs')}"], "OutputError",
        r"files that nlp-ssl did not write", check=lambda w: _assert_file(w.root / "docs" / "notes.txt"))
    add("pre-no-validation-blocks", "pretrain", "a corpus too small for one validation block, with train.eval_steps=5",
        pre("data=TINYBLOCKS", "train.eval_steps=5"), "DataError", r"has no validation blocks",
        setup=lambda w: run(["prepare", str(w.cfg / "prep.yaml"), f"output_dir={w.p('tinyblocks')}",
                             "data.max_examples=3", "validation_fraction=0.01"]))
    add("pre-output-is-data", "pretrain", "output_dir pointed at its own prepared corpus, with overwrite=true",
        lambda w: ["pretrain", str(w.cfg / "pre.yaml"), f"output_dir={w.p('blocks')}", "overwrite=true"],
        "OutputError", r"holds this run's input \(data", check=lambda w: _assert_file(w.root / "blocks" / "dataset_dict.json"))
    add("pre-resume-nothing", "pretrain", "train.resume=true on an empty output_dir", pre("train.resume=true"),
        "OutputError", r"holds no run to resume")
    add("pre-positions", "pretrain", "model.max_position_embeddings below the block size", pre("model.max_position_embeddings=16"),
        "ConfigError", r"exceed the model's 16 positions")
    add("pre-clm-modernbert", "pretrain", "objective.task=clm with model.arch=modernbert", pre("objective.task=clm", "model.arch=modernbert"),
        "ConfigError", r"clm needs a model with a causal-LM head")

    # --- finetune (classification) ---
    ft = lambda *o: (lambda w: ["finetune", str(w.cfg / "ft.yaml"), "output_dir=OUT", *o])  # noqa: E731
    add("ft-model-missing", "finetune", "model directory that does not exist", ft("model=/nonexistent/encoder"),
        "ModelError|HubError", r"model: /nonexistent/encoder does not exist")
    add("ft-model-no-config", "finetune", "model: a folder without config.json", lambda w: ft(f"model={_user_folder(w, 'empty-model')}")(w),
        "ModelError", r"holds no config\.json")
    add("ft-preset-unknown", "finetune", "task.preset misspelt", ft("task.preset=sst"), "ConfigError", r"unknown task 'sst'; did you mean 'sst2'")
    add("ft-labels-mismatch", "finetune", "task.labels that do not match the data's labels", ft("task.labels=[good,bad]"),
        "DataError", r"label 'positive' is not in the declared set|labels.*do not match")
    add("ft-label-column-missing", "finetune", "task.label_column not in the file", ft("task.label_column=sentiment"),
        "DataError", r"no column 'sentiment'")
    add("ft-csv-bad-row", "finetune", "CSV with a row of too many fields (line 4)",
        lambda w: ft("task.train.path=" + _write(w, "bad.csv", "text,label\na,positive\nb,negative\nc,positive,extra,x\n"))(w),
        "DataError", r"bad\.csv.*line 4")
    add("ft-tokenizer-mismatch", "finetune", "tokenizer: another tokenizer than the encoder's", ft("tokenizer=TOK2"),
        "ModelError", r"tokenizer.*(does not match|vocabulary)")
    add("ft-weight-decay", "finetune", "train.weight_decay=-1", ft("train.weight_decay=-1"), "ConfigError", r"weight_decay: must be 0 or more")
    add("ft-max-grad-norm", "finetune", "train.max_grad_norm=-2", ft("train.max_grad_norm=-2"), "ConfigError", r"max_grad_norm: must be 0 \(off\) or positive")
    add("ft-output-is-file", "finetune", "output_dir is an existing file",
        lambda w: ["finetune", str(w.cfg / "ft.yaml"), f"output_dir={_file(w, 'ftfile')}"], "OutputError", r"is a file, not a folder")
    add("ft-output-is-model", "finetune", "output_dir pointed at the encoder it fine-tunes, with overwrite=true",
        lambda w: ["finetune", str(w.cfg / "ft.yaml"), f"output_dir={w.p('enc')}", "overwrite=true"], "OutputError",
        r"holds this run's input \(model", check=lambda w: _assert_file(w.root / "enc" / "model.safetensors"))
    add("ft-seeds-duplicate", "finetune", "--seeds 1,1", lambda w: ft()(w) + ["--seeds", "1,1"], "ConfigError", r"seed: one seed, or a list of distinct seeds")
    add("ft-old-learning-rates", "finetune", "train.learning_rates=[1e-3] (the name before one vocabulary)",
        ft("train.learning_rates=[1e-3]"), "ConfigError", r"train.learning_rates: renamed; write 'train.learning_rate'")
    add("ft-max-train-samples", "finetune", "max_train_samples=0", ft("max_train_samples=0"), "ConfigError", r"max_train_samples: must be positive")

    # --- finetune (extractive QA) ---
    qa = lambda *o: (lambda w: ["finetune", str(w.cfg / "qa.yaml"), "output_dir=OUT", *o])  # noqa: E731

    def squad_file(name, **override):
        return lambda w: qa(f"task.train.path={_write(w, name, json.dumps(squad(4, **override)))}")(w)

    add("qa-missing-id", "finetune", "SQuAD question without `id`", lambda w: qa(
        f"task.train.path={_write(w, 'noid.json', json.dumps(_drop_id(squad(4))))}")(w), "DataError", r"noid\.json.*data\[0\]\.paragraphs\[0\]\.qas\[0\].*'id'")
    add("qa-answer-start-text", "finetune", "SQuAD answer_start that is not an integer",
        squad_file("start.json", answers=[{"text": "Paris", "answer_start": "twenty"}]), "DataError", r"start\.json.*answer_start.*integer")
    add("qa-wrong-nesting", "finetune", "SQuAD `paragraphs` given as an object, not a list",
        lambda w: qa(f"task.train.path={_write(w, 'nest.json', json.dumps({'data': [{'paragraphs': {'context': 'x', 'qas': []}}]}))}")(w),
        "DataError", r"nest\.json.*paragraphs")
    add("qa-invalid-json", "finetune", "SQuAD file that is not valid JSON",
        lambda w: qa(f"task.train.path={_write(w, 'trunc.json', json.dumps(squad(4))[:-7])}")(w), "DataError", r"trunc\.json, line \d+: not valid JSON")
    add("qa-doc-stride", "finetune", "task.doc_stride larger than a window allows", qa("task.doc_stride=500"),
        "ConfigError", r"doc_stride: 500 leaves no room")

    # --- evaluate ---
    add("eval-model-missing", "evaluate", "model directory that does not exist", lambda w: ["evaluate", w.p("no-model")],
        "ModelError|ConfigError", r"no-model")
    add("eval-preset-other-task", "evaluate", "task.preset=rte on a model fine-tuned on another task",
        lambda w: ["evaluate", w.p("clf"), "task.preset=rte"], "ModelError", r"fine-tuned .* labels|classes")
    add("eval-split-unknown", "evaluate", "splits=[test] that the task does not have", lambda w: ["evaluate", w.p("clf"), "splits=[test]"],
        "ConfigError", r"splits: \['test'\] not in the task")

    add("eval-output-is-model", "evaluate", "output_dir pointed at the model being scored (would replace its metrics.json)",
        lambda w: ["evaluate", w.p("clf"), f"output_dir={w.p('clf')}"], "OutputError", r"holds this run's input \(model",
        check=lambda w: _assert_file(w.root / "clf" / "metrics.json"))
    add("eval-output-other-run", "evaluate", "output_dir pointed at another command's run (would replace its metrics.json)",
        lambda w: ["evaluate", w.p("clf"), f"output_dir={w.p('enc')}"], "OutputError",
        r"already holds the output of `nlp-ssl pretrain`", check=lambda w: _assert_file(w.root / "enc" / "metrics.json"))
    add("eval-output-is-file", "evaluate", "output_dir is an existing file",
        lambda w: ["evaluate", w.p("clf"), f"output_dir={_file(w, 'evalfile')}"], "OutputError", r"is a file, not a folder")

    # --- answer ---
    add("answer-no-qa-head", "answer", "a pretrained encoder (no trained QA head)",
        lambda w: ["answer", w.p("enc"), "--question", "Where?", "--context", "In Paris."], "ModelError", r"without a trained ForQuestionAnswering head")
    add("answer-model-missing", "answer", "model directory that does not exist",
        lambda w: ["answer", w.p("none"), "--question", "Where?", "--context", "In Paris."], "ModelError|HubError", r"does not exist")
    add("answer-file-missing", "answer", "--file that does not exist",
        lambda w: ["answer", w.p("qa"), "--file", w.p("none.json")], "DataError", r"file not found.*none\.json")
    add("answer-output-is-dir", "answer", "--output pointing at a folder",
        lambda w: ["answer", w.p("qa"), "--file", str(w.data / "squad.json"), "--output", str(w.data)], "OutputError", r"is a folder")
    add("answer-output-is-input", "answer", "--output the same file as --file",
        lambda w: ["answer", w.p("qa"), "--file", _copy_file(w, "squad.json", "mine.json"), "--output", str(w.data / "mine.json")],
        "OutputError", r"is the --file being answered", check=lambda w: _assert_file(w.data / "mine.json"))
    add("answer-empty-context", "answer", "--context ''", lambda w: ["answer", w.p("qa"), "--question", "Where?", "--context", " "],
        "DataError", r"empty context")
    add("answer-no-context", "answer", "--question without --context", lambda w: ["answer", w.p("qa"), "--question", "Where?"],
        "usage", r"give --question and --context, or --file")
    return C


def _drop_id(data: dict) -> dict:
    del data["data"][0]["paragraphs"][0]["qas"][0]["id"]
    return data


def _assert_file(path: Path) -> None:
    assert path.is_file(), f"{path} was removed or renamed"


def run_case(case: Case, ws: Workspace) -> Result:
    if case.setup:
        case.setup(ws)
    argv = [a.replace("TOK2", ws.p("tok2")).replace("TINYBLOCKS", ws.p("tinyblocks")).replace("=OUT", "=" + ws.p("out-" + case.id)) for a in case.argv(ws)]
    rc, text = run(argv)
    return Result(case, rc, text)


def expected_code(case: Case) -> set[int]:
    return {EXIT[c] for c in case.error.split("|")}


def main() -> int:
    table = "--table" in sys.argv
    if table:
        print("| # | command | bad input | error class (exit code) | message (pattern) |")
        print("|---|---|---|---|---|")
        for i, c in enumerate(cases(), 1):
            codes = ", ".join(f"{e} ({EXIT[e]})" for e in c.error.split("|"))
            print(f"| {i} | `{c.command}` | {c.bad_input} | {codes} | `{c.message.replace('|', ' or ')}` |")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp))
        ws.build()
        counts = {"clear": 0, "traceback": 0, "silent": 0}
        only = [a for a in sys.argv[1:] if not a.startswith("-")]
        for case in cases():
            if only and case.id not in only:
                continue
            r = run_case(case, ws)
            counts[r.outcome] += 1
            ok = r.outcome == "clear" and r.rc in expected_code(case) and re.search(case.message, r.stderr, re.S)
            first = next((line for line in r.stderr.splitlines() if "error" in line.lower()), r.stderr.strip()[-200:])
            print(f"{case.id:28s} {r.outcome:9s} rc={r.rc!s:4s} {'OK ' if ok else 'BAD'} {first[:150]}")
        total = sum(counts.values())
        print(f"\n{total} bad inputs: " + ", ".join(f"{k} {v} ({100 * v / total:.0f}%)" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
