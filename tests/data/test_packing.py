import numpy as np
import pytest

from nlp_ssl.data.packing import BlockPacker


def test_exact_blocks_on_hand_written_documents():
    p = BlockPacker(block_size=5, sep_id=99, prefix_id=101)
    out = p.add([np.array([1, 2, 3]), np.array([4, 5])])  # stream 1 2 3 99 4 5 99 -> one block of 4, rest buffered
    assert out.tolist() == [[101, 1, 2, 3, 99]]
    out = p.add([np.array([6, 7, 8, 9, 10])])  # stream continues 4 5 99 | 6 7 8 9 10 99
    assert out.tolist() == [[101, 4, 5, 99, 6], [101, 7, 8, 9, 10]]
    p.finish()
    assert p.stats.documents == 3 and p.stats.tokens == 13 and p.stats.blocks == 3 and p.stats.dropped_tokens == 1


def test_without_prefix_blocks_hold_only_stream():
    p = BlockPacker(block_size=3, sep_id=0)
    assert p.add([np.array([1, 2, 3, 4, 5])]).tolist() == [[1, 2, 3], [4, 5, 0]]


@pytest.mark.parametrize("batch", [1, 3, 17, 1000])
def test_batching_never_changes_blocks_or_drops_text_at_batch_edges(batch):
    rng = np.random.default_rng(0)
    docs = [rng.integers(5, 500, size=rng.integers(1, 300)) for _ in range(400)]
    whole = BlockPacker(block_size=64, sep_id=3, prefix_id=2)
    ref = whole.add(docs)
    whole.finish()
    p = BlockPacker(block_size=64, sep_id=3, prefix_id=2)
    got = [b for i in range(0, len(docs), batch) if (b := p.add(docs[i:i + batch])) is not None]
    p.finish()
    assert np.array_equal(np.concatenate(got), ref)
    # every token is in a block except fewer than one block's worth at the very end
    total = sum(len(d) + 1 for d in docs)
    assert p.stats.tokens == total
    assert p.stats.blocks * 63 + p.stats.dropped_tokens == total and p.stats.dropped_tokens < 63
    # and the stream reads back in order
    stream = np.concatenate([np.append(d, 3) for d in docs])
    assert np.array_equal(ref[:, 1:].reshape(-1), stream[: ref.shape[0] * 63])
