"""Tokenizer training (WordPiece, BPE, byte-level BPE, Unigram) with `tokenizers`, saved as a HF fast tokenizer.

`tokenizers` does the training; this module only assembles the pipeline (normaliser, pre-tokeniser, model,
trainer, post-processor, decoder) from a config and wraps the result in `PreTrainedTokenizerFast`, so that
`AutoTokenizer.from_pretrained(dir)` loads it with the right special tokens, pair template and
`model_max_length` without importing nlp_ssl.

Example:
    >>> cfg = TokenizerConfig(model="wordpiece", vocab_size=8000)        # doctest: +SKIP
    >>> tok = train_tokenizer(cfg, [["some text", "more text"]])          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Literal

from nlp_ssl.errors import TokenizerError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TokenizerModel = Literal["wordpiece", "bpe", "byte_bpe", "unigram"]


@dataclass
class TokenizerConfig:
    """How to build and train a tokenizer.

    Attributes:
        model: `wordpiece` (BERT), `bpe` (sentencepiece-style, `▁` marks word starts), `byte_bpe`
            (GPT-2/RoBERTa byte-level, never unknown), or `unigram` (sentencepiece Unigram LM).
        vocab_size: final vocabulary size, special tokens included.
        min_frequency: pairs/words rarer than this are not merged (WordPiece, BPE).
        lowercase: lower-case before tokenizing.
        strip_accents: remove accents (NFD then drop combining marks); null follows `lowercase`, as BERT does.
        template: how single sentences and pairs are wrapped: `bert` (`[CLS] A [SEP] B [SEP]`, token types 0/1)
            or `roberta` (`<s> A </s></s> B </s>`, token types all 0).
        unk_token, pad_token, cls_token, sep_token, mask_token: special tokens (ids 0.. in this order).
        model_max_length: longest sequence the tokenizer will produce (and the model will take).
        limit_alphabet: WordPiece/BPE keep at most this many initial characters (rare scripts map to unknown).
    """

    model: TokenizerModel = "wordpiece"
    vocab_size: int = 8192
    min_frequency: int = 2
    lowercase: bool = True
    strip_accents: bool | None = None
    template: Literal["bert", "roberta"] = "bert"
    unk_token: str = "[UNK]"
    pad_token: str = "[PAD]"
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    mask_token: str = "[MASK]"
    model_max_length: int = 512
    limit_alphabet: int = 1000

    @property
    def special_tokens(self) -> list[str]:
        return [self.unk_token, self.pad_token, self.cls_token, self.sep_token, self.mask_token]

    def min_vocab_size(self) -> int:
        """Smallest vocabulary that holds the special tokens plus the model's fixed alphabet."""
        base = len(set(self.special_tokens))
        return base + (256 if self.model == "byte_bpe" else 1)

    def validate(self) -> list[str]:
        problems = []
        if self.vocab_size < self.min_vocab_size():
            need = "the 5 special tokens" + (" and the 256 byte symbols" if self.model == "byte_bpe" else " and one symbol")
            problems.append(f"vocab_size: {self.vocab_size} is too small to hold {need}; use at least "
                            f"{self.min_vocab_size()} (a few thousand for real use)")
        if len(set(self.special_tokens)) != 5:
            problems.append(f"special tokens must be distinct, got {self.special_tokens}")
        if self.model_max_length < 8:
            problems.append(f"model_max_length: {self.model_max_length} is too short; use e.g. 128 or 512")
        if self.min_frequency < 1:
            problems.append("min_frequency: must be at least 1")
        return problems


def build_tokenizer(cfg: TokenizerConfig):
    """An untrained `tokenizers.Tokenizer` and its trainer, assembled from `cfg`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    strip = cfg.lowercase if cfg.strip_accents is None else cfg.strip_accents
    from nlp_ssl.progress import interactive

    # the library's own progress, on a terminal only (its redraws would fill a log file)
    common = dict(vocab_size=cfg.vocab_size, special_tokens=cfg.special_tokens, show_progress=interactive())
    if cfg.model == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=cfg.unk_token))
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=strip, lowercase=cfg.lowercase)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(min_frequency=cfg.min_frequency, limit_alphabet=cfg.limit_alphabet,
                                            continuing_subword_prefix="##", **common)
        return tok, trainer
    steps = []
    if strip:
        steps += [normalizers.NFD(), normalizers.StripAccents()]
    if cfg.lowercase:
        steps.append(normalizers.Lowercase())
    steps.append(normalizers.NFC())
    if cfg.model == "byte_bpe":
        tok = Tokenizer(models.BPE())  # byte-level: every byte is in the alphabet, nothing is unknown
        tok.normalizer = normalizers.Sequence(steps)
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(min_frequency=cfg.min_frequency,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **common)
        return tok, trainer
    tok = Tokenizer(models.BPE(unk_token=cfg.unk_token) if cfg.model == "bpe" else models.Unigram())
    tok.normalizer = normalizers.Sequence(steps)
    # Split punctuation off words as BERT does, so "world," and "world" share a token.
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.Metaspace()
    if cfg.model == "bpe":
        trainer = trainers.BpeTrainer(min_frequency=cfg.min_frequency, limit_alphabet=cfg.limit_alphabet, **common)
    else:
        trainer = trainers.UnigramTrainer(unk_token=cfg.unk_token, **common)
    return tok, trainer


def _post_processor(cfg: TokenizerConfig, tok):
    from tokenizers import processors

    cls_id, sep_id = tok.token_to_id(cfg.cls_token), tok.token_to_id(cfg.sep_token)
    cls, sep = cfg.cls_token, cfg.sep_token
    if cfg.template == "bert":
        template = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, cls_id), (sep, sep_id)])
    else:
        template = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}",
            special_tokens=[(cls, cls_id), (sep, sep_id)])
    if cfg.model == "byte_bpe":  # offsets must not include the leading space the byte-level step adds
        return processors.Sequence([processors.ByteLevel(trim_offsets=True), template])
    return template


def train_tokenizer(cfg: TokenizerConfig, batches: Iterable[list[str]], length: int | None = None) -> "PreTrainedTokenizerFast":
    """Train on an iterator of text batches (memory stays bounded: one batch at a time) and wrap for transformers.

    Args:
        cfg: tokenizer settings.
        batches: iterator of lists of strings.
        length: number of texts, if known (only for the progress display of `tokenizers`).

    Returns:
        A `PreTrainedTokenizerFast` with special tokens, pair template and `model_max_length` set.
    """
    from transformers import PreTrainedTokenizerFast

    tok, trainer = build_tokenizer(cfg)
    tok.train_from_iterator(batches, trainer=trainer, length=length)
    if tok.get_vocab_size() <= len(cfg.special_tokens):
        raise TokenizerError(f"training produced only {tok.get_vocab_size()} tokens: the corpus holds no usable text")
    tok.post_processor = _post_processor(cfg, tok)
    extra = {"bos_token": cfg.cls_token, "eos_token": cfg.sep_token} if cfg.template == "roberta" else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=cfg.model_max_length,
        unk_token=cfg.unk_token, pad_token=cfg.pad_token, cls_token=cfg.cls_token,
        sep_token=cfg.sep_token, mask_token=cfg.mask_token,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"] if cfg.template == "bert"
        else ["input_ids", "attention_mask"],
        **extra,
    )


@dataclass
class TokenizerSummary:
    vocab_size: int
    held_out_documents: int
    held_out_words: int
    held_out_tokens: int
    unknown_rate: float
    tokens_per_word: float

    def format(self) -> str:
        return (f"vocab size {self.vocab_size:,} | held-out sample: {self.held_out_documents:,} documents, "
                f"{self.held_out_words:,} words -> {self.held_out_tokens:,} tokens | "
                f"tokens/word {self.tokens_per_word:.3f} | unknown-token rate {self.unknown_rate:.4%}")


def summarize(tokenizer: "PreTrainedTokenizerFast", texts: Iterator[str] | list[str]) -> TokenizerSummary:
    """Vocabulary size, unknown-token rate and tokens per whitespace word on held-out texts."""
    texts = list(texts)
    words = sum(len(t.split()) for t in texts)
    tokens = unknown = 0
    unk_id = tokenizer.unk_token_id
    backend = tokenizer.backend_tokenizer  # the Rust tokenizer: batch encoding runs on all cores
    for i in range(0, len(texts), 256):
        for enc in backend.encode_batch(texts[i:i + 256], add_special_tokens=False):
            tokens += len(enc.ids)
            unknown += enc.ids.count(unk_id) if unk_id is not None else 0
    return TokenizerSummary(
        vocab_size=len(tokenizer), held_out_documents=len(texts), held_out_words=words, held_out_tokens=tokens,
        unknown_rate=unknown / tokens if tokens else 0.0, tokens_per_word=tokens / words if words else 0.0,
    )


def check_tokenizer_dir(path: str) -> dict:
    """Check that `path` holds a saved fast tokenizer; return its tokenizer_config.json (cheap: no transformers import)."""
    import json
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise TokenizerError(f"tokenizer not found: {p}; run `nlp-ssl train-tokenizer CONFIG` first or fix the path")
    if not (p / "tokenizer.json").is_file():
        raise TokenizerError(f"{p} holds no tokenizer.json (a fast tokenizer); point at a directory written by "
                             "`nlp-ssl train-tokenizer` or `tokenizer.save_pretrained`")
    try:
        return json.loads((p / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def load_tokenizer(path: str) -> "PreTrainedTokenizerFast":
    """Load a saved fast tokenizer, with a clear error when the directory holds none."""
    from transformers import AutoTokenizer

    from nlp_ssl.hub.inputs import local_path

    path = local_path(str(path), "tokenizer")  # a Hub id is downloaded into the Hub cache first
    check_tokenizer_dir(path)
    return AutoTokenizer.from_pretrained(str(path))


def tokenizer_fingerprint(tokenizer) -> dict:
    """What must not change between preparing a corpus and training on it: vocabulary size, special token ids
    and a hash of the vocabulary (token -> id)."""
    import hashlib
    import json

    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode()
    special = {name: getattr(tokenizer, f"{name}_token_id", None) for name in ("pad", "unk", "cls", "sep", "mask", "bos", "eos")}
    return {"vocab_size": len(tokenizer), "special_ids": {k: v for k, v in special.items() if v is not None},
            "vocab_sha256": hashlib.sha256(vocab).hexdigest()}


def check_same_tokenizer(tokenizer, recorded: dict | None, tokenizer_path: str, data_path: str) -> None:
    """Refuse a tokenizer that differs from the one a prepared corpus was made with (`recorded`: its
    fingerprint in prepare_report.json; corpora prepared before fingerprints were recorded are not checked)."""
    if not recorded:
        return
    now = tokenizer_fingerprint(tokenizer)
    diffs = [f"{k} {recorded.get(k)} then, {now[k]} now" for k in ("vocab_size", "special_ids") if recorded.get(k) != now[k]]
    if not diffs and recorded.get("vocab_sha256") != now["vocab_sha256"]:
        diffs.append("the same size but another vocabulary")
    if diffs:
        from nlp_ssl.errors import ModelError

        raise ModelError(f"tokenizer: {tokenizer_path} is not the tokenizer {data_path} was prepared with ({'; '.join(diffs)}), "
                         "so its token ids would be misread; use the tokenizer recorded in its prepare_report.json "
                         "(leave `tokenizer:` null), or prepare the corpus again with this tokenizer")
