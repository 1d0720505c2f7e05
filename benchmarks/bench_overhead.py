"""Cost of reading every per-step state: our hooks vs TransformerLens vs nnsight.

For each model (HRM, TRM, HRM-LM at two small sizes with random weights, and the
shipped zoo checkpoints at ``--zoo-batch``), times one
evaluation forward (no grad) in these variants, interleaved over repeats, and
prints the median CPU time of this process (``time.process_time``, robust to other
jobs sharing the machine) and its ratio to the un-instrumented forward:

* ``bypassed``   hook points skipped entirely (``model.hook`` replaced by identity): no-hook floor
* ``plain``      the model as shipped, hook points present but nothing attached (ratio 1.00)
* ``ours``       ``model.run_with_cache`` of every hook (every per-step state)
* ``tl``         TransformerLens ``run_with_cache`` through ``interp.interop.to_transformer_lens``
* ``nnsight``    nnsight trace saving the same hooks (``interp.interop.nnsight_cache``)

It also times one un-hooked hook-point call (``model.hook(name, x)``) in a tight
loop; ``hooks x call / plain`` is the share of the forward spent passing through
idle hook points, a less noisy estimate of the hooks-off cost than ``bypassed``.

Usage::

    python benchmarks/bench_overhead.py            # threads=1, 7 repeats, small and zoo models
    python benchmarks/bench_overhead.py --cases zoo --zoo-batch 64 --repeats 11

Each ratio cell is ``median / median plain`` followed by the range of the ratios
measured within one round (variant and plain back to back, under the same load),
and the load average is printed before and after, so a run on a busy machine
shows how far to trust it. TransformerLens and nnsight columns print ``-`` when
those packages are not installed.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.cli_format import Parser  # noqa: E402
from common.cli_types import positive_int  # noqa: E402

from common.cli_options import add_threads_option, set_threads  # noqa: E402

import torch  # noqa: E402

from models import HRMConfig, HRMLMConfig, TRMConfig, build_model  # noqa: E402


def small_cases():
    """(label, config, inputs) for two sizes per family, random weights."""
    g = torch.Generator().manual_seed(0)
    out = []
    for size, (D, L, B, S) in {"S": (64, 16, 4, 4), "M": (128, 81, 2, 2)}.items():
        common = dict(vocab_size=11, seq_len=L, hidden_size=D, num_heads=4, halt_max_steps=S)
        x = torch.randint(0, 11, (B, L), generator=g)
        out.append((f"HRM-{size} (D{D} L{L} B{B}, 2x2 cycles, {S} seg)", HRMConfig(**common, H_layers=2, L_layers=2), (x,)))
        out.append((f"TRM-{size} (D{D} L{L} B{B}, T3 n6 mlp_t, {S} seg)", TRMConfig(**common, num_layers=2), (x,)))
        Llm = 32 if size == "S" else 128
        cfg = HRMLMConfig(vocab_size=256, seq_len=Llm, hidden_size=D, num_heads=4, slow_period=2, slow_updates=2,
                          tbptt_steps=2, passes=2)
        out.append((f"HRM-LM-{size} (D{D} L{Llm} B{B}, M4, 2 passes)", cfg, (torch.randint(0, 256, (B, Llm), generator=g),)))
    return out


ZOO = ("hrm-sudoku9", "hrm-attn-sudoku9", "trm-sudoku9", "trm-maze9", "hrm-lm-pydoc")


def zoo_cases(batch: int):
    """(label, checkpoint directory, inputs) for the shipped zoo models at ``batch`` (random valid tokens)."""
    from models.checkpoint import read_checkpoint_config

    g = torch.Generator().manual_seed(0)
    out = []
    for name in ZOO:
        path = REPO / "zoo" / name
        cfg = read_checkpoint_config(path)["model"]
        x = torch.randint(1 if cfg["family"] != "hrm_lm" else 0, cfg["vocab_size"], (batch, cfg["seq_len"]), generator=g)
        out.append((f"zoo {name} (B{batch})", path, (x,)))
    return out


def _build(spec):
    """A fresh eval-mode copy of a config's random model or a checkpoint's trained one."""
    if isinstance(spec, Path):
        from models.load import load_any

        return load_any(spec)[0].eval()
    torch.manual_seed(0)
    return build_model(spec).eval()


def bench_case(spec, inputs, repeats: int) -> dict[str, object]:
    """Per-round CPU times of each variant, interleaved round by round."""
    model = _build(spec)
    bypassed = _build(spec)
    bypassed.hook = lambda name, x: x  # instance attribute shadows HookedModel.hook: no hook-point calls
    variants = {"bypassed": lambda: bypassed(*inputs), "plain": lambda: model(*inputs),
                "ours": lambda: model.run_with_cache(*inputs)}
    try:
        from interp.interop import nnsight_cache, to_nnsight, to_transformer_lens

        view = to_transformer_lens(_build(spec))
        nn_model = to_nnsight(_build(spec))
        variants["tl"] = lambda: view.run_with_cache(*inputs)
        variants["nnsight"] = lambda: nnsight_cache(nn_model, *inputs)
    except ImportError:  # TransformerLens / nnsight not installed: their columns print "-"
        view = nn_model = None
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        ref_out, ref_cache = model.run_with_cache(*inputs)
        if view is not None:
            assert set(ref_cache) == set(view.run_with_cache(*inputs)[1]) == set(nnsight_cache(nn_model, *inputs)[1]), \
                "the three caches hold different hooks"
        assert torch.equal(bypassed(*inputs), ref_out), "bypassing hooks changed the output"
        for fn in variants.values():  # warm-up
            fn()
        for _ in range(repeats):
            for name, fn in variants.items():
                t0 = time.process_time()
                fn()
                times[name].append(time.process_time() - t0)
        name = next(iter(ref_cache))
        x = ref_cache[name]
        n_calls = 20000
        t0 = time.process_time()
        for _ in range(n_calls):
            model.hook(name, x)
        per_call = (time.process_time() - t0) / n_calls
    return {"times": times, "n_hooks": len(ref_cache), "per_call": per_call}


def ratio_cell(times: dict[str, list[float]], k: str) -> str:
    """Median CPU time over the plain median, with the range of the per-round ratios (same round, same load)."""
    if k not in times:
        return "-"
    base = statistics.median(times["plain"])
    rounds = [a / b for a, b in zip(times[k], times["plain"])]
    return f"{statistics.median(times[k]) / base:.2f} ({min(rounds):.2f}-{max(rounds):.2f})"


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=positive_int, default=7)
    add_threads_option(ap)
    ap.add_argument("--cases", choices=("small", "zoo", "all"), default="all")
    ap.add_argument("--zoo-batch", type=positive_int, default=16)
    args = ap.parse_cli(argv)
    if args.repeats < 1 or args.threads < 1 or args.zoo_batch < 1:
        print("error: --repeats, --threads and --zoo-batch must be >= 1", file=sys.stderr)
        return 2
    set_threads(args)
    from importlib.metadata import PackageNotFoundError, version

    libs = []
    for lib in ("transformer-lens", "nnsight"):
        try:
            __import__(lib.replace("-", "_"))  # import cost kept out of the timings
            libs.append(f"{lib} {version(lib)}")
        except (ImportError, PackageNotFoundError):
            libs.append(f"{lib} not installed")
    print(f"# torch {torch.__version__}, {', '.join(libs)}, python {platform.python_version()}, threads {args.threads}, "
          f"repeats {args.repeats}, cpus {os.cpu_count()}, load avg at start {os.getloadavg()[0]:.1f}")
    print("| model | hooks | plain CPU ms | bypassed | ours cache | TL cache | nnsight save | idle hook call us | "
          "hooks x call / plain |")
    print("|---|---|---|---|---|---|---|---|---|")
    t_start = time.perf_counter()
    todo = (small_cases() if args.cases != "zoo" else []) + (zoo_cases(args.zoo_batch) if args.cases != "small" else [])
    for label, spec, inputs in todo:
        r = bench_case(spec, inputs, args.repeats)
        t = r["times"]
        base = statistics.median(t["plain"])
        cells = [ratio_cell(t, k) for k in ("bypassed", "ours", "tl", "nnsight")]
        print(f"| {label} | {r['n_hooks']} | {1000 * base:.1f} | {' | '.join(cells)} | {1e6 * r['per_call']:.1f} | "
              f"{100 * r['n_hooks'] * r['per_call'] / base:.3f}% |", flush=True)
    print(f"# total {time.perf_counter() - t_start:.0f} s wall, load avg at end {os.getloadavg()[0]:.1f}; ratio = median "
          "CPU time / median plain CPU time, (min-max) of the per-round ratios")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
