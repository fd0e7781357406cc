import numpy as np

from nlp_ssl.data.split import held_out_mask


def test_fraction_within_a_few_sigma_and_seeded():
    n, p = 200_000, 0.05
    m = held_out_mask(np.arange(n), p, seed=3)
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(m.mean() - p) < 4 * sigma
    assert np.array_equal(m, held_out_mask(np.arange(n), p, seed=3))
    assert not np.array_equal(m, held_out_mask(np.arange(n), p, seed=4))


def test_independent_of_batching_and_zero_fraction():
    whole = held_out_mask(np.arange(1000), 0.1, seed=0)
    parts = np.concatenate([held_out_mask(np.arange(i, min(i + 37, 1000)), 0.1, seed=0) for i in range(0, 1000, 37)])
    assert np.array_equal(whole, parts)
    assert not held_out_mask(np.arange(1000), 0.0, seed=0).any()


def test_held_out_stream_keeps_documents_out_of_training_whatever_the_batching():
    from nlp_ssl.data.split import HeldOutStream

    docs = [f"doc {i}" for i in range(500)]
    held = {f"doc {i}" for i in np.flatnonzero(held_out_mask(np.arange(500), 0.1, seed=0))}
    for size in (7, 100):
        split = HeldOutStream(0.1, max_held_out=20)
        trained = [t for b in split.training_batches(docs[i:i + size] for i in range(0, 500, size)) for t in b]
        assert set(trained) == set(docs) - held and split.documents == 500 and split.held_out_count == len(held)
        assert split.held_out == sorted(held, key=lambda t: int(t.split()[1]))[:20]


def test_containment_groups_put_each_phrase_with_the_longest_text_holding_it():
    from nlp_ssl.data.split import containment_groups

    texts = ["good", "a good film", "bad", "film", "a truly bad day", "a good", "truly bad", "goo"]
    # "good" and "a good" and "film" sit inside "a good film"; "bad" and "truly bad" inside "a truly bad day";
    # "goo" is not a word-for-word span of anything (no match inside a word)
    assert containment_groups(texts).tolist() == [1, 1, 4, 1, 4, 1, 4, 7]


def test_shared_text_groups_join_chains_across_columns():
    from nlp_ssl.data.split import shared_text_groups

    a = ["p1", "p2", "p3", "p4", "p5"]
    b = ["h1", "p3 ", "h3", "h1", "h5"]  # pair 1 shares p3 with pair 2; pair 3 shares h1 with pair 0
    assert shared_text_groups(a, b).tolist() == [0, 1, 1, 0, 4]


def _spans(texts):
    out = set()
    for t in texts:
        w = t.split()
        out.update(" ".join(w[i:j]) for i in range(len(w)) for j in range(i + 1, len(w) + 1))
    return out


def test_sst2_selection_split_does_not_share_sentences_with_training(data_dir):
    """GLUE SST-2's train is phrases cut from sentences: drawn phrase by phrase, most selection phrases occur word
    for word inside a training phrase (178 of 200 measured); held out by sentence, only common short phrases do."""
    import dataclasses

    from nlp_ssl.data.sources import column
    from nlp_ssl.tasks.classification import PRESETS, load_task, resolve_task

    rng = np.random.default_rng(0)
    inside = {}
    for unit in ("example", None):  # None: the preset's own (whole sentences)
        task = resolve_task(dataclasses.replace(PRESETS["sst2"], preset="sst2", held_out_unit=unit))
        data, _ = load_task(task, data_dir)
        train_spans = _spans(str(t).strip() for t in column(data["train"], "text_a"))
        selection = [str(t).strip() for t in column(data["selection"], "text_a")]
        sample = rng.choice(len(selection), 200, replace=False)
        inside[unit] = sum(selection[i] in train_spans for i in sample)
        assert 1100 < len(selection) < 1700  # about 2% of 67,349 phrases either way
    assert inside["example"] > 150 and inside[None] < 40, inside
