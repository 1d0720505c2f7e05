"""Text corpora for language modelling: tokenizers, a binary dataset format, batch sampling.

A text dataset directory holds ``train.bin`` and ``val.bin`` (flat token ids,
uint16, or uint32 when the vocabulary exceeds 65535) and ``meta.json``
(``vocab_size``, ``tokenizer``, ``dtype``, token counts, source). The split is
contiguous: the first ``1 - val_fraction`` of the tokens train, the rest
validate. ``meta.json`` is written last, so a directory with it is complete.

Tokenizers: ``ByteTokenizer`` (vocab 256, raw UTF-8 bytes, always available)
and ``GPT2Tokenizer`` (tiktoken's ``gpt2`` BPE, vocab 50257; tiktoken fetches
its BPE file over the network on first use unless it is already cached, see
``TIKTOKEN_CACHE_DIR``).

The default corpus is the English documentation shipped with every Python
install (``pydoc_data.topics``), so a text model can be trained offline.
"""

from __future__ import annotations

import os
import sys
from common.cli_format import Parser, UsageError, print_error
from common.cli_types import bounded_float, nonempty_str, path_str
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from common.io import atomic_write_bytes, atomic_write_json, read_json

META = "meta.json"
SPLITS = ("train", "val")


class TextDataError(ValueError):
    """A problem with a text corpus or dataset directory, named in one line."""


class TokenizerUnavailableError(TextDataError):
    """A tokenizer whose backing files or package cannot be loaded here."""


# ----------------------------------------------------------------------------- tokenizers


class ByteTokenizer:
    """Token = one byte of the UTF-8 encoding (vocab 256). Any byte string round-trips exactly."""

    name = "bytes"
    vocab_size = 256
    needs_text = False

    def encode(self, text: str | bytes) -> np.ndarray:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return np.frombuffer(data, dtype=np.uint8).astype(np.int64)

    def decode_bytes(self, ids: Sequence[int] | np.ndarray) -> bytes:
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise TextDataError(f"byte token ids must be 0..255, found {arr.min()}..{arr.max()}")
        return arr.astype(np.uint8).tobytes()

    def decode(self, ids: Sequence[int] | np.ndarray, errors: str = "replace") -> str:
        """Bytes to text; invalid UTF-8 (e.g. a sample cut mid-character) becomes U+FFFD by default."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)


class GPT2Tokenizer:
    """GPT-2 byte-level BPE through ``tiktoken`` (imported on first use; vocab 50257)."""

    name = "gpt2"
    vocab_size = 50257
    needs_text = True

    def __init__(self) -> None:
        try:
            import tiktoken
        except ImportError:
            raise TokenizerUnavailableError(
                "the gpt2 tokenizer needs the 'tiktoken' package (pip install tiktoken)"
            ) from None
        try:
            self._enc = tiktoken.get_encoding("gpt2")
        except Exception as exc:  # tiktoken raises network/IO errors of several types
            raise TokenizerUnavailableError(
                f"could not load the GPT-2 BPE file through tiktoken ({type(exc).__name__}); it needs network "
                "access once, or a cached copy in TIKTOKEN_CACHE_DIR; use tokenizer='bytes' offline"
            ) from None
        self.vocab_size = int(self._enc.n_vocab)
        self.eot_token = int(self._enc.eot_token)

    def encode(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise TextDataError("the gpt2 tokenizer encodes str, not bytes; decode the corpus as UTF-8 first")
        return np.asarray(self._enc.encode_ordinary(text), dtype=np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray, errors: str = "replace") -> str:
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            raise TextDataError(f"gpt2 token ids must be 0..{self.vocab_size - 1}, found {arr.min()}..{arr.max()}")
        return self._enc.decode_bytes(arr.tolist()).decode("utf-8", errors=errors)


TOKENIZERS: dict[str, type] = {"bytes": ByteTokenizer, "gpt2": GPT2Tokenizer}


def _tokenizer_class(name: str) -> type:
    if name not in TOKENIZERS:
        raise TextDataError(f"unknown tokenizer {name!r}, expected one of {', '.join(TOKENIZERS)}")
    return TOKENIZERS[name]


def get_tokenizer(name: str) -> ByteTokenizer | GPT2Tokenizer:
    """``"bytes"`` or ``"gpt2"`` (``interp trace --text`` tokenises with the checkpoint's own)."""
    return _tokenizer_class(name)()


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16, or uint32 when the vocabulary exceeds 65535 (the agreed on-disk rule)."""
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.uint32)


# ----------------------------------------------------------------------------- corpus


def default_corpus_text() -> str:
    """Python's bundled documentation topics (``pydoc_data.topics``), concatenated in key order.

    Shipped with every CPython install, English prose plus code samples, so a
    text model can be trained without downloading anything.
    """
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"


def _read_source(source: str | os.PathLike | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    if str(source) in ("pydoc", "default"):
        return default_corpus_text().encode("utf-8")
    path = Path(source)
    if not path.is_file():
        raise TextDataError(f"corpus file not found: {path} (or use source='pydoc' for the built-in corpus)")
    return path.read_bytes()


def build_text_dataset(
    out_dir: str | Path,
    source: str | os.PathLike | bytes = "pydoc",
    tokenizer: str = "bytes",
    val_fraction: float = 0.1,
) -> dict[str, Any]:
    """Tokenize ``source`` (a file path, ``"pydoc"`` for the built-in corpus, or raw bytes) into ``out_dir``.

    Writes ``train.bin``, ``val.bin`` and finally ``meta.json`` (each atomically)
    and returns the metadata dict.
    """
    if not 0.0 < val_fraction < 1.0:
        raise TextDataError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    cls = _tokenizer_class(tokenizer)
    raw = _read_source(source)
    if not raw:
        raise TextDataError(f"the corpus {source if not isinstance(source, bytes) else '<bytes>'} is empty")
    if cls.needs_text:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TextDataError(
                f"the corpus is not valid UTF-8 (byte {exc.start}); the {tokenizer} tokenizer needs text, "
                "use tokenizer='bytes'"
            ) from None
        tok = cls()
        ids = tok.encode(text)
    else:
        tok = cls()
        ids = tok.encode(raw)
    n_val = int(round(len(ids) * val_fraction))
    n_train = len(ids) - n_val
    if n_train < 2 or n_val < 2:
        raise TextDataError(
            f"corpus of {len(ids)} tokens is too small for val_fraction={val_fraction} "
            f"(train {n_train}, val {n_val}; each needs >= 2)"
        )
    dtype = token_dtype(tok.vocab_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "train.bin", ids[:n_train].astype(dtype).tobytes(), fsync=True)
    atomic_write_bytes(out / "val.bin", ids[n_train:].astype(dtype).tobytes(), fsync=True)
    meta = {
        "vocab_size": int(tok.vocab_size),
        "tokenizer": tok.name,
        "dtype": dtype.name,
        "n_train_tokens": int(n_train),
        "n_val_tokens": int(n_val),
        "val_fraction": float(val_fraction),
        "source": "<bytes>" if isinstance(source, bytes) else str(source),
        "corpus_bytes": len(raw),
    }
    atomic_write_json(out / META, meta, fsync=True)
    return meta


def read_text_meta(data_dir: str | Path) -> dict[str, Any]:
    """Load and check ``meta.json`` of a text dataset directory."""
    path = Path(data_dir) / META
    if not path.is_file():
        raise TextDataError(f"no {META} in {data_dir}: not a text dataset (build one with build_text_dataset)")
    meta = read_json(path, TextDataError)
    for key in ("vocab_size", "tokenizer", "dtype"):
        if key not in meta:
            raise TextDataError(f"{path}: missing key {key!r}")
    if meta["dtype"] not in ("uint16", "uint32"):
        raise TextDataError(f"{path}: dtype must be uint16 or uint32, got {meta['dtype']!r}")
    return meta


# ----------------------------------------------------------------------------- dataset


class TextDataset:
    """One split of a text dataset, memory-mapped; samples (x, y) windows with y = x shifted by one."""

    def __init__(self, data_dir: str | Path, split: str = "train", block_size: int = 256) -> None:
        if split not in SPLITS:
            raise TextDataError(f"split must be 'train' or 'val', got {split!r}")
        if block_size < 1:
            raise TextDataError(f"block_size must be >= 1, got {block_size}")
        self.meta = read_text_meta(data_dir)
        self.vocab_size = int(self.meta["vocab_size"])
        self.block_size = int(block_size)
        path = Path(data_dir) / f"{split}.bin"
        if not path.is_file():
            raise TextDataError(f"missing token file {path}")
        dtype = np.dtype(self.meta["dtype"])
        size = path.stat().st_size
        if size % dtype.itemsize:
            raise TextDataError(f"{path}: {size} bytes is not a whole number of {dtype.name} tokens (truncated file?)")
        n = size // dtype.itemsize
        if n <= block_size:
            raise TextDataError(f"{path}: {n} tokens, need more than block_size={block_size}")
        self.tokens = np.memmap(path, dtype=dtype, mode="r", shape=(n,))

    def __len__(self) -> int:
        """Number of tokens in the split."""
        return int(self.tokens.shape[0])

    @property
    def num_windows(self) -> int:
        """Number of distinct training windows (start positions)."""
        return len(self) - self.block_size

    def _windows(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = starts[:, None] + np.arange(self.block_size + 1)[None, :]
        chunk = np.asarray(self.tokens[idx], dtype=np.int64)
        return chunk[:, :-1], chunk[:, 1:]

    def get_batch(self, batch_size: int, rng: Any = None, device: Any = None) -> tuple[Any, Any]:
        """``batch_size`` random windows: x [B, block] and targets y = x shifted by one, int64.

        ``rng`` is a ``numpy.random.Generator`` (or an int seed / None) ->
        numpy arrays, or a ``torch.Generator`` -> torch tensors. ``device``
        returns torch tensors on that device in either case.
        """
        if batch_size < 1:
            raise TextDataError(f"batch_size must be >= 1, got {batch_size}")
        torch_mod = sys.modules.get("torch")
        if torch_mod is not None and isinstance(rng, torch_mod.Generator):
            starts = torch_mod.randint(0, self.num_windows, (batch_size,), generator=rng).numpy()
            as_torch = True
        else:
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            starts = gen.integers(0, self.num_windows, size=batch_size)
            as_torch = device is not None
        x, y = self._windows(starts)
        if not as_torch:
            return x, y
        import torch

        return torch.from_numpy(x).to(device or "cpu"), torch.from_numpy(y).to(device or "cpu")

    def eval_starts(self) -> np.ndarray:
        """Start positions of the non-overlapping windows that tile the split (the tail < block+1 is dropped)."""
        return np.arange(0, len(self) - self.block_size, self.block_size)

    def iter_eval_batches(
        self, batch_size: int, max_batches: int | None = None, device: Any = None
    ) -> Iterator[tuple[Any, Any]]:
        """Deterministic batches of consecutive non-overlapping windows (last batch may be smaller).

        Every token after the first, up to the tail that does not fill a window,
        is predicted exactly once.
        """
        if batch_size < 1:
            raise TextDataError(f"batch_size must be >= 1, got {batch_size}")
        starts = self.eval_starts()
        for b, i in enumerate(range(0, len(starts), batch_size)):
            if max_batches is not None and b >= max_batches:
                return
            x, y = self._windows(starts[i : i + batch_size])
            if device is None:
                yield x, y
            else:
                import torch

                yield torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


# ----------------------------------------------------------------------------- CLI


def build_parser() -> Parser:
    """The parser of ``python -m tasks.text``."""
    parser = Parser(prog="python -m tasks.text", description="text datasets")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="tokenize a corpus into train.bin / val.bin / meta.json")
    b.add_argument("--out", type=path_str, required=True)
    b.add_argument("--source", type=nonempty_str, default="pydoc", help="a text file, or 'pydoc' for the built-in corpus")
    b.add_argument("--tokenizer", default="bytes", choices=("bytes", "gpt2"))
    b.add_argument("--val-fraction", type=bounded_float(0.0, 1.0, lo_open=True, name="fraction in (0, 1]"), default=0.1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.text build --out DIR [--source FILE|pydoc] [--tokenizer bytes|gpt2]``."""
    try:
        args = build_parser().parse_args(argv)
        meta = build_text_dataset(args.out, args.source, args.tokenizer, args.val_fraction)
    except (UsageError, ValueError, OSError) as exc:
        return print_error(exc)
    print(f"wrote {args.out}: {meta['n_train_tokens']} train + {meta['n_val_tokens']} val tokens ({meta['tokenizer']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
