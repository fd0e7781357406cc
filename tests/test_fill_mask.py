import numpy as np

from nlp_ssl.fill_mask import compare_fill_mask, masked_words, sentences, top_k


def test_sentences_strip_markup_and_keep_lengths():
    docs = ["Too short. This one has exactly six words!<br /><br />And this sentence is fine, with eight words."]
    assert sentences(docs, min_words=6, max_words=8) == ["This one has exactly six words!",
                                                         "And this sentence is fine, with eight words."]


def test_masked_words_mask_one_whole_word_and_restore_the_text(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    texts = ["the city is in the north of the country", "he was born in the city", "zzzq xqz"]
    items = masked_words(tok, texts, n=10, seed=0)
    assert 1 <= len(items) <= 3
    for it in items:
        assert it.text.count(tok.mask_token) == 1 and it.word.isalpha()
        assert it.text.replace(tok.mask_token, it.word) in texts  # one whole word, spelled as the tokenizer does
        assert tok.convert_tokens_to_ids(it.word) == it.token_id
    assert masked_words(tok, texts, 10, seed=0) == items  # seeded


def test_a_model_that_always_guesses_one_word_scores_exactly_its_share(tiny_encoder_dir, tmp_path):
    """top-1 of a model whose output bias makes it always answer 'the' equals the share of masked 'the's."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_encoder_dir))
    the = tok.convert_tokens_to_ids("the")
    with torch.no_grad():
        model.get_output_embeddings().bias[the] += 1e4
    model.save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    texts = ["the city is large", "a city in the north", "the river runs north", "a river is long and wide"]
    result = compare_fill_mask(str(tmp_path), texts, n_scored=4, n_examples=2, seed=1)
    items = masked_words(tok, texts, 4, seed=1)
    share = np.mean([it.token_id == the for it in items])
    assert result["scored"] == len(items) == 4
    assert result["trained"]["top1"] == share
    assert (top_k(model, tok, items, k=1)[:, 0] == the).all()
    assert len(result["examples"]) == 2 and len(result["examples"][0]["untrained"]) == 3
