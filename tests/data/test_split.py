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
