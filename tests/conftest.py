"""Shared fixtures: the real data directory, small real-data slices, and a tiny tokenizer trained on them."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

# Progress bars of long loops would flood the test log (they stay on for users).
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("NLP_SSL_DATA_DIR", REPO.parent / "shared" / "data"))
WIKI_00 = "corpus/wikipedia-en-2015/part-00.jsonl.gz"


@pytest.fixture(scope="session")
def data_dir() -> str:
    if not (DATA_DIR / "README.md").exists():
        pytest.fail(f"real data not found at {DATA_DIR}; check out ../shared beside the repo or set NLP_SSL_DATA_DIR")
    return str(DATA_DIR)


@pytest.fixture(scope="session")
def wiki_docs(data_dir) -> list[dict]:
    """The first 120 articles of Wikipedia shard 00 (real text, ~1.5 MB)."""
    out = []
    with gzip.open(Path(data_dir) / WIKI_00, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if len(out) == 120:
                break
    return out


@pytest.fixture(scope="session")
def wiki_slice(tmp_path_factory, wiki_docs) -> Path:
    """A small JSON-lines file of real Wikipedia articles (id, title, text)."""
    path = tmp_path_factory.mktemp("wiki") / "wiki-slice.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for d in wiki_docs:
            f.write(json.dumps({"id": d["id"], "title": d["title"], "text": d["text"]}) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory, wiki_docs) -> Path:
    """A WordPiece tokenizer (vocab 2000) trained on the slice and saved like `train-tokenizer` saves it."""
    from nlp_ssl.tokenization import TokenizerConfig, train_tokenizer

    texts = [d["text"] for d in wiki_docs]
    tok = train_tokenizer(TokenizerConfig(model="wordpiece", vocab_size=2000, model_max_length=256),
                          [texts[i:i + 40] for i in range(0, len(texts), 40)])
    out = tmp_path_factory.mktemp("tok") / "wordpiece-2k"
    tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A tiny BERT masked-LM encoder (1 layer, width 32, random weights) saved with its tokenizer, as
    `nlp-ssl pretrain` saves one: the input of the fine-tuning tests."""
    import torch

    from nlp_ssl.modeling import ModelConfig, build_mlm_model
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    torch.manual_seed(0)
    model = build_mlm_model(ModelConfig(preset="tiny", num_layers=1, hidden_size=32, num_heads=2,
                                        intermediate_size=64, max_position_embeddings=256), tok)
    out = tmp_path_factory.mktemp("encoder") / "bert-32"
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
