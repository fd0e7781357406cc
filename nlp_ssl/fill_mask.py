"""What a masked-LM encoder learned, made visible: fill in words of held-out text with the trained model and with
the same architecture untrained, side by side, and score both on many masked words.

Only whole words are masked (a word the tokenizer keeps as one token, letters only), one per sentence, so a guess is
right or wrong as a word. The untrained model is the trained one's config with random weights (seeded); the
frequency baseline always guesses the word most often masked in the sample, which is what a model on the
masked-LM "unigram plateau" (loss ~6) does.

Example:
    >>> result = compare_fill_mask("runs/quickstart/encoder", texts, n_examples=5, seed=0)
    >>> result["trained"]["top1"], result["untrained"]["top1"]
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TAGS = re.compile(r"<[^>]+>")


@dataclass
class MaskedWord:
    """One held-out sentence with one whole word masked."""

    text: str  # the sentence with the word replaced by the tokenizer's mask token
    word: str  # the masked word (as the tokenizer spells it)
    token_id: int


def sentences(documents: list[str], min_words: int = 6, max_words: int = 40) -> list[str]:
    """Sentences of plain text (markup removed) between min_words and max_words long, in order."""
    out = []
    for doc in documents:
        for s in _SENTENCE_END.split(_TAGS.sub(" ", doc)):
            if min_words <= len(s.split()) <= max_words:
                out.append(s.strip())
    return out


def masked_words(tokenizer, texts: list[str], n: int, seed: int) -> list[MaskedWord]:
    """Up to `n` sentences, each with one seeded random whole word masked (a word of letters that the tokenizer
    keeps as one token; sentences without one are skipped)."""
    rng = np.random.default_rng(seed)
    out: list[MaskedWord] = []
    for i in rng.permutation(len(texts)):
        text = texts[int(i)]
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        words = enc.word_ids()
        counts = Counter(w for w in words if w is not None)
        candidates = [j for j, w in enumerate(words) if w is not None and counts[w] == 1
                      and tokenizer.convert_ids_to_tokens(enc["input_ids"][j]).isalpha()]
        if not candidates:
            continue
        j = candidates[int(rng.integers(len(candidates)))]
        start, end = enc["offset_mapping"][j]
        out.append(MaskedWord(text[:start] + tokenizer.mask_token + text[end:],
                              tokenizer.convert_ids_to_tokens(enc["input_ids"][j]), enc["input_ids"][j]))
        if len(out) == n:
            break
    return out


def top_k(model, tokenizer, items: list[MaskedWord], k: int = 5, batch_size: int = 64) -> np.ndarray:
    """The k best token ids at each item's mask, (N, k), best first."""
    import torch

    model.eval()
    rows = []
    with torch.inference_mode():
        for b in range(0, len(items), batch_size):
            batch = tokenizer([it.text for it in items[b:b + batch_size]], return_tensors="pt", padding=True,
                              truncation=True, max_length=128)
            logits = model(**batch).logits  # (B, T, V)
            at = batch["input_ids"] == tokenizer.mask_token_id  # (B, T): one mask per row
            if not bool((at.sum(dim=1) == 1).all()):  # e.g. cut off by truncation: rows would shift silently
                raise ValueError("every text must hold exactly one mask token within 128 tokens")
            rows.append(logits[at].topk(k, dim=-1).indices.numpy())  # (B, k)
    return np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)


def untrained_like(model_dir: str, seed: int = 0):
    """The same masked-LM architecture with random weights (what the encoder was before pretraining)."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    torch.manual_seed(seed)
    return AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(model_dir))


def compare_fill_mask(model_dir: str, texts: list[str], n_scored: int = 500, n_examples: int = 5,
                      seed: int = 0) -> dict[str, Any]:
    """Score the trained encoder, an untrained copy and the frequency baseline on `n_scored` masked words of
    held-out `texts`; also return `n_examples` of them with each model's top 3.

    Returns:
        {"scored": N, "trained"/"untrained"/"most_frequent_word": {"top1", "top5"}, "examples": [...]}.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    items = masked_words(tokenizer, texts, n_scored, seed)
    gold = np.asarray([it.token_id for it in items])
    result: dict[str, Any] = {"scored": len(items)}
    guesses = {}
    for name, model in (("trained", AutoModelForMaskedLM.from_pretrained(model_dir)),
                        ("untrained", untrained_like(model_dir, seed))):
        guesses[name] = top_k(model, tokenizer, items)
        result[name] = {"top1": float(np.mean(guesses[name][:, 0] == gold)),
                        "top5": float(np.mean((guesses[name] == gold[:, None]).any(axis=1)))}
    common = Counter(gold.tolist()).most_common(5)
    result["most_frequent_word"] = {"word": tokenizer.convert_ids_to_tokens(common[0][0]),
                                    "top1": common[0][1] / max(len(gold), 1),
                                    "top5": sum(c for _, c in common) / max(len(gold), 1)}
    result["examples"] = [{"text": it.text, "word": it.word,
                           **{name: tokenizer.convert_ids_to_tokens(g[i, :3].tolist()) for name, g in guesses.items()}}
                          for i, it in enumerate(items[:n_examples])]
    return result


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as text: examples first, then the scores."""
    lines = []
    for ex in result["examples"]:
        lines += [ex["text"], f"  answer: {ex['word']:<12} trained: {', '.join(ex['trained']):<32} "
                  f"untrained: {', '.join(ex['untrained'])}"]
    n = result["scored"]
    lines.append(f"\nmasked-word accuracy on {n} held-out sentences (one whole word masked in each; 'most frequent "
                 f"answers': always guessing '{result['most_frequent_word']['word']}', top-5 the 5 commonest answers):")
    for name in ("trained", "untrained", "most_frequent_word"):
        r = result[name]
        label = {"most_frequent_word": "most frequent answers"}.get(name, f"{name} encoder")
        lines.append(f"  {label:<22} top-1 {100 * r['top1']:5.1f}%   top-5 {100 * r['top5']:5.1f}%")
    return "\n".join(lines)
