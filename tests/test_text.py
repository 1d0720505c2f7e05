"""Text datasets: byte tokenizer, corpus building, memory-mapped batches, evaluation windows, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tasks import text as T

CORPUS = ("Ünïcödé and ASCII mixed. " * 40 + "\u4e2d\u6587 \U0001f600 end.\n") * 3


@pytest.fixture
def corpus_dir(tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_text(CORPUS, encoding="utf-8")
    out = tmp_path / "data"
    meta = T.build_text_dataset(out, src, tokenizer="bytes", val_fraction=0.1)
    return out, meta, CORPUS.encode("utf-8")


def test_byte_tokenizer_round_trip():
    tok = T.ByteTokenizer()
    ids = tok.encode(CORPUS)
    assert ids.dtype == np.int64 and ids.max() <= 255
    assert bytes(ids.astype(np.uint8)) == CORPUS.encode("utf-8")
    assert tok.decode(ids) == CORPUS
    raw = bytes(range(256))  # not valid UTF-8: bytes still round-trip exactly
    assert tok.decode_bytes(tok.encode(raw)) == raw
    assert "\ufffd" in tok.decode(tok.encode(raw))
    with pytest.raises(T.TextDataError, match="0..255"):
        tok.decode([256])


def test_build_writes_contiguous_split(corpus_dir):
    out, meta, raw = corpus_dir
    n = len(raw)
    n_val = round(0.1 * n)
    assert meta["n_val_tokens"] == n_val and meta["n_train_tokens"] == n - n_val
    train = np.fromfile(out / "train.bin", dtype=np.uint16)
    val = np.fromfile(out / "val.bin", dtype=np.uint16)
    assert len(train) + len(val) == n
    assert bytes(np.concatenate([train, val]).astype(np.uint8)) == raw
    on_disk = json.loads((out / "meta.json").read_text())
    assert on_disk["vocab_size"] == 256 and on_disk["tokenizer"] == "bytes" and on_disk["dtype"] == "uint16"
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "train.bin", "val.bin"]  # no temp files left
    assert T.token_dtype(65535) == np.uint16 and T.token_dtype(65536) == np.uint32


def test_default_corpus_is_pydoc_topics():
    from pydoc_data.topics import topics

    text = T.default_corpus_text()
    assert len(text.encode("utf-8")) > 100_000
    for key in ("assert", "lambda", "with"):
        assert topics[key].strip("\n") in text
    assert text == T.default_corpus_text()  # deterministic order


def test_get_batch_shift_and_contiguity(corpus_dir):
    out, _, raw = corpus_dir
    ds = T.TextDataset(out, "train", block_size=16)
    train_bytes = raw[: len(ds)]
    x, y = ds.get_batch(8, np.random.default_rng(0))
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == np.int64
    assert np.array_equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x, y):
        window = bytes(np.concatenate([row_x, row_y[-1:]]).astype(np.uint8))
        assert window in train_bytes  # a real 17-byte window of the training text


def test_get_batch_determinism_and_torch(corpus_dir):
    out, _, _ = corpus_dir
    ds = T.TextDataset(out, "train", block_size=8)
    a = ds.get_batch(4, np.random.default_rng(3))
    b = ds.get_batch(4, np.random.default_rng(3))
    c = ds.get_batch(4, np.random.default_rng(4))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert np.array_equal(ds.get_batch(4, 3)[0], a[0])  # an int seed means the same generator
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    tx, ty = ds.get_batch(4, g1)
    ux, _ = ds.get_batch(4, g2)
    assert isinstance(tx, torch.Tensor) and tx.dtype == torch.int64 and torch.equal(tx, ux)
    assert torch.equal(tx[:, 1:], ty[:, :-1])
    dx, _ = ds.get_batch(2, np.random.default_rng(0), device="cpu")
    assert isinstance(dx, torch.Tensor)


def test_eval_batches_cover_val_split(corpus_dir):
    out, meta, raw = corpus_dir
    block = 10
    ds = T.TextDataset(out, "val", block_size=block)
    val = np.frombuffer(raw[meta["n_train_tokens"] :], dtype=np.uint8).astype(np.int64)
    batches = list(ds.iter_eval_batches(batch_size=3))
    xs = np.concatenate([b[0] for b in batches])
    ys = np.concatenate([b[1] for b in batches])
    k = (len(val) - 1) // block
    assert xs.shape == (k, block)
    assert np.array_equal(xs.reshape(-1), val[: k * block])
    assert np.array_equal(ys.reshape(-1), val[1 : k * block + 1])
    assert all(len(b[0]) == 3 for b in batches[:-1])
    again = list(ds.iter_eval_batches(batch_size=3))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))
    assert len(list(ds.iter_eval_batches(batch_size=3, max_batches=2))) == 2


def test_errors(tmp_path, corpus_dir):
    out, _, _ = corpus_dir
    with pytest.raises(T.TextDataError, match="no meta.json"):
        T.TextDataset(tmp_path, "train", 8)
    with pytest.raises(T.TextDataError, match="need more than block_size"):
        T.TextDataset(out, "val", block_size=10_000)
    with pytest.raises(T.TextDataError, match="split must be"):
        T.TextDataset(out, "test", 8)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(T.TextDataError, match="is empty"):
        T.build_text_dataset(tmp_path / "x", empty)
    with pytest.raises(T.TextDataError, match="corpus file not found"):
        T.build_text_dataset(tmp_path / "x", tmp_path / "missing.txt")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9 ".encode("latin-1") * 100)
    with pytest.raises(T.TextDataError, match="not valid UTF-8"):
        T.build_text_dataset(tmp_path / "x", latin1, tokenizer="gpt2")
    assert T.build_text_dataset(tmp_path / "y", latin1)["n_train_tokens"] == 450  # bytes need no UTF-8
    with pytest.raises(T.TextDataError, match="too small"):
        T.build_text_dataset(tmp_path / "x", b"abc")
    with pytest.raises(T.TextDataError, match="unknown tokenizer"):
        T.build_text_dataset(tmp_path / "x", b"abcdefgh" * 10, tokenizer="sentencepiece")
    with pytest.raises(T.TextDataError, match="val_fraction"):
        T.build_text_dataset(tmp_path / "x", b"abcdefgh" * 10, val_fraction=1.0)
    (out / "val.bin").write_bytes(b"\x00\x01\x02")  # 3 bytes: not whole uint16 tokens
    with pytest.raises(T.TextDataError, match="not a whole number"):
        T.TextDataset(out, "val", 1)
    (out / "train.bin").unlink()
    with pytest.raises(T.TextDataError, match="missing token file"):
        T.TextDataset(out, "train", 8)


def test_gpt2_tokenizer_loads_or_fails_in_one_line():
    try:
        tok = T.GPT2Tokenizer()
    except T.TokenizerUnavailableError as exc:  # offline without a cached BPE file
        assert "could not load the GPT-2 BPE file" in str(exc) and "\n" not in str(exc)
        return
    text = "Hello world, recursion!"
    ids = tok.encode(text)
    assert tok.vocab_size == 50257 and tok.decode(ids) == text and ids.max() < 50257


def test_cli(tmp_path, capsys):
    src = tmp_path / "c.txt"
    src.write_text("hello world " * 50)
    assert T.main(["build", "--out", str(tmp_path / "d"), "--source", str(src)]) == 0
    assert "540 train + 60 val tokens" in capsys.readouterr().out
    assert T.main(["build", "--out", str(tmp_path / "d"), "--source", str(tmp_path / "nope.txt")]) == 2
    assert capsys.readouterr().err.startswith("error: corpus file not found")
