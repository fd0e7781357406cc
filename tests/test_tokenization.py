from __future__ import annotations

import subprocess
import sys

import pytest

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError
from nlp_ssl.tokenization import TokenizerConfig, summarize, train_tokenizer


@pytest.fixture(scope="module")
def texts(wiki_docs):
    return [d["text"] for d in wiki_docs[:60]]


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "byte_bpe", "unigram"])
def test_each_model_trains_saves_and_loads_with_autotokenizer(model, texts, wiki_docs, tmp_path):
    # Unigram training is far slower per document: a smaller slice keeps the suite quick.
    train = texts if model != "unigram" else texts[:12]
    template = "roberta" if model == "byte_bpe" else "bert"
    specials = {"unk_token": "<unk>", "pad_token": "<pad>", "cls_token": "<s>", "sep_token": "</s>",
                "mask_token": "<mask>"} if template == "roberta" else {}
    cfg = TokenizerConfig(model=model, vocab_size=1500, model_max_length=128, template=template, **specials)
    tok = train_tokenizer(cfg, [train[i:i + 10] for i in range(0, len(train), 10)])
    assert len(tok) == 1500
    tok.save_pretrained(str(tmp_path))
    # Load in a fresh interpreter that never imports nlp_ssl: the artifact must stand alone.
    code = (
        "import sys, json\n"
        "from transformers import AutoTokenizer\n"
        f"t = AutoTokenizer.from_pretrained({str(tmp_path)!r})\n"
        "e = t('Hello there, friend.', 'Second part')\n"
        "print(json.dumps({'fast': t.is_fast, 'max': t.model_max_length, 'toks': t.convert_ids_to_tokens(e['input_ids']),"
        " 'types': e.get('token_type_ids'), 'mask': t.mask_token, 'pad': t.pad_token, 'cls': t.cls_token,"
        " 'sep': t.sep_token, 'nlp_ssl': 'nlp_ssl' in sys.modules,"
        " 'offsets': t('Hello there', return_offsets_mapping=True)['offset_mapping']}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout.strip().splitlines()[-1])
    cls, sep = cfg.cls_token, cfg.sep_token
    assert out["fast"] and out["max"] == 128 and not out["nlp_ssl"]
    assert (out["mask"], out["pad"], out["cls"], out["sep"]) == (cfg.mask_token, cfg.pad_token, cls, sep)
    toks = out["toks"]
    assert toks[0] == cls and toks[-1] == sep
    if template == "bert":
        assert toks.count(sep) == 2
        first_sep = toks.index(sep)
        assert out["types"] == [0] * (first_sep + 1) + [1] * (len(toks) - first_sep - 1)
    else:
        assert toks.count(sep) == 3 and out["types"] is None  # <s> A </s></s> B </s>
    # offsets of special tokens are empty, and a word's offsets point into the text
    assert out["offsets"][0] == [0, 0] and out["offsets"][-1] == [0, 0]
    assert out["offsets"][1][0] == 0
    # lower-casing and accents (strip_accents follows lowercase)
    assert tok.decode(tok("Café RÉSUMÉ")["input_ids"], skip_special_tokens=True).strip() == "cafe resume"


def test_summary_counts_words_tokens_and_unknowns(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    s = summarize(tok, ["the cat sat", "on the mat ☃"])
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in ["the cat sat", "on the mat ☃"]]
    assert s.held_out_words == 7 and s.held_out_tokens == sum(map(len, ids))
    assert s.unknown_rate == sum(i.count(tok.unk_token_id) for i in ids) / s.held_out_tokens > 0  # the snowman is unknown
    assert s.tokens_per_word == s.held_out_tokens / 7


def test_vocab_too_small_for_special_tokens():
    with pytest.raises(ConfigError, match="vocab_size: 5 is too small to hold the 5 special tokens.*at least 6"):
        from_dict(TokenizerConfig, {"vocab_size": 5})
    with pytest.raises(ConfigError, match="vocab_size: 200 is too small.*256 byte symbols.*at least 261"):
        from_dict(TokenizerConfig, {"model": "byte_bpe", "vocab_size": 200})
    with pytest.raises(ConfigError, match="special tokens must be distinct"):
        from_dict(TokenizerConfig, {"pad_token": "[UNK]"})


def test_tokenizer_training_shows_the_librarys_progress_on_a_terminal_only(monkeypatch):
    from nlp_ssl.tokenization import TokenizerConfig, build_tokenizer

    monkeypatch.setenv("NLP_SSL_PROGRESS", "bars")
    assert build_tokenizer(TokenizerConfig())[1].show_progress is True
    monkeypatch.setenv("NLP_SSL_PROGRESS", "lines")
    assert build_tokenizer(TokenizerConfig(model="unigram"))[1].show_progress is False
