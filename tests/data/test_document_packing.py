"""Document-layout blocks (`prepare` with `layout: documents`): exact blocks, nothing dropped, no block crosses
two documents; and the prepared corpus carries the layout."""

import numpy as np

from nlp_ssl.data.packing import DocumentPacker


def test_exact_blocks_on_hand_written_documents():
    p = DocumentPacker(block_size=6, sep_id=9, prefix_id=8, pad_id=0)  # 3 tokens of a document per block
    out = p.add_flat(np.array([1, 2, 3, 4, 5, 6, 7, 8]), np.array([4, 1, 3]), word_start=np.array([1, 0, 1, 0, 1, 1, 1, 0]))
    assert out["input_ids"].tolist() == [[8, 1, 2, 3, 9, 0], [8, 4, 9, 0, 0, 0], [8, 5, 9, 0, 0, 0], [8, 6, 7, 8, 9, 0]]
    assert out["length"].tolist() == [5, 3, 3, 5]
    assert out["word_start"].tolist() == [[1, 1, 0, 1, 1, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 1, 0]]
    p.finish()
    assert (p.stats.documents, p.stats.tokens, p.stats.blocks, p.stats.dropped_tokens) == (3, 11, 4, 0)


def test_random_documents_read_back_in_order():
    rng = np.random.default_rng(0)
    docs = [rng.integers(10, 500, size=rng.integers(1, 90)) for _ in range(200)]
    p = DocumentPacker(block_size=32, sep_id=3, prefix_id=2, pad_id=0)
    out = p.add_flat(np.concatenate(docs), np.array([len(d) for d in docs]))
    pieces = [row[1:n - 1] for row, n in zip(out["input_ids"], out["length"])]
    assert all(row[0] == 2 and row[n - 1] == 3 and (row[n:] == 0).all() for row, n in zip(out["input_ids"], out["length"]))
    assert all(len(x) <= 29 for x in pieces)
    assert np.array_equal(np.concatenate(pieces), np.concatenate(docs))  # every token, in order, none dropped
    assert p.stats.blocks == sum(-(-len(d) // 29) for d in docs)  # a block never holds two documents


def test_prepare_documents_layout(tmp_path, tiny_tokenizer_dir, wiki_slice):
    from datasets import load_from_disk

    from nlp_ssl.config import from_dict
    from nlp_ssl.recipes.prepare import PrepareConfig, cache_key, main

    base = {"output_dir": str(tmp_path / "d"), "tokenizer": str(tiny_tokenizer_dir),
            "data": {"path": str(wiki_slice), "max_examples": 10}, "block_size": 32, "validation_fraction": 0.2,
            "progress": False}
    stream = from_dict(PrepareConfig, base)
    docs = from_dict(PrepareConfig, {**base, "layout": "documents"})
    assert cache_key(stream, None) != cache_key(docs, None)
    report = main(docs)
    assert report["layout"] == "documents" and report["total"]["dropped_tokens"] == 0
    dd = load_from_disk(str(tmp_path / "d"))
    assert dd["train"].column_names == ["input_ids", "length"]
    rows = dd["train"].with_format("numpy")[:]
    ids, lengths = rows["input_ids"], rows["length"]
    from nlp_ssl.tokenization import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    assert (ids[:, 0] == tok.cls_token_id).all()
    assert all(r[n - 1] == tok.sep_token_id and (r[n:] == tok.pad_token_id).all() and tok.sep_token_id not in r[1:n - 1]
               for r, n in zip(ids, lengths))
