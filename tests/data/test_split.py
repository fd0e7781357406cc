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
