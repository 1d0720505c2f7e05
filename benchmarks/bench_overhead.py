"""Cost of reading every per-step state: our hooks vs TransformerLens vs nnsight.

For each model (HRM, TRM, HRM-LM when present) at two small sizes, times one
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

    python benchmarks/bench_overhead.py            # threads=1, 7 repeats
    python benchmarks/bench_overhead.py --repeats 11 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models import HRMConfig, HRMLMConfig, TRMConfig, build_model  # noqa: E402


def cases():
    """(label, config, inputs) for two sizes per family."""
    g = torch.Generator().manual_seed(0)
    out = []
    for size, (D, L, B, S) in {"S": (64, 16, 4, 4), "M": (128, 81, 2, 2)}.items():
        common = dict(vocab_size=11, seq_len=L, hidden_size=D, num_heads=4, halt_max_steps=S)
        x = torch.randint(0, 11, (B, L), generator=g)
        out.append((f"HRM-{size} (D{D} L{L} B{B}, 2x2 cycles, {S} seg)", HRMConfig(**common, H_layers=2, L_layers=2), (x,)))
        out.append((f"TRM-{size} (D{D} L{L} B{B}, T3 n6 mlp_t, {S} seg)", TRMConfig(**common, num_layers=2), (x,)))
        try:
            import models.hrm_lm  # noqa: F401
        except ImportError:
            continue
        Llm = 32 if size == "S" else 128
        cfg = HRMLMConfig(vocab_size=256, seq_len=Llm, hidden_size=D, num_heads=4, slow_period=2, slow_updates=2,
                          tbptt_steps=2, passes=2)
        out.append((f"HRM-LM-{size} (D{D} L{Llm} B{B}, M4, 2 passes)", cfg, (torch.randint(0, 256, (B, Llm), generator=g),)))
    return out


def bench_case(cfg, inputs, repeats: int) -> dict[str, float]:
    from interp.interop import nnsight_cache, to_nnsight, to_transformer_lens

    torch.manual_seed(0)
    model = build_model(cfg).eval()
    bypassed = build_model(cfg).eval()
    bypassed.load_state_dict(model.state_dict())
    bypassed.hook = lambda name, x: x  # instance attribute shadows HookedModel.hook: no hook-point calls
    view = to_transformer_lens(build_model(cfg).eval())
    view.model.load_state_dict(model.state_dict())
    nn_model = to_nnsight(build_model(cfg).eval())
    nn_model._module.load_state_dict(model.state_dict())

    variants = {
        "bypassed": lambda: bypassed(*inputs),
        "plain": lambda: model(*inputs),
        "ours": lambda: model.run_with_cache(*inputs),
        "tl": lambda: view.run_with_cache(*inputs),
        "nnsight": lambda: nnsight_cache(nn_model, *inputs),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        ref_out, ref_cache = model.run_with_cache(*inputs)
        _, tl_cache = view.run_with_cache(*inputs)
        _, nn_cache = nnsight_cache(nn_model, *inputs)
        assert set(ref_cache) == set(tl_cache) == set(nn_cache), "the three caches hold different hooks"
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
    med = {k: statistics.median(v) for k, v in times.items()}
    med["n_hooks"] = len(ref_cache)
    med["per_call"] = per_call
    return med


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        print("error: --repeats and --threads must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    import nnsight
    import transformer_lens  # noqa: F401  (import cost kept out of the timings)
    from importlib.metadata import version

    print(f"# torch {torch.__version__}, transformer-lens {version('transformer-lens')}, nnsight {nnsight.__version__}, "
          f"python {platform.python_version()}, threads {args.threads}, repeats {args.repeats}, "
          f"cpus {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f}")
    print("| model | hooks | plain CPU ms | bypassed | plain | ours cache | TL cache | nnsight save | idle hook call us | hooks x call / plain |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    t_start = time.perf_counter()
    for label, cfg, inputs in cases():
        med = bench_case(cfg, inputs, args.repeats)
        base = med["plain"]
        r = {k: med[k] / base for k in ("bypassed", "plain", "ours", "tl", "nnsight")}
        print(f"| {label} | {med['n_hooks']} | {1000 * base:.1f} | {r['bypassed']:.2f} | {r['plain']:.2f} | "
              f"{r['ours']:.2f} | {r['tl']:.2f} | {r['nnsight']:.2f} | {1e6 * med['per_call']:.1f} | "
              f"{100 * med['n_hooks'] * med['per_call'] / base:.3f}% |", flush=True)
    print(f"# total {time.perf_counter() - t_start:.0f} s wall; ratios are median CPU time / median plain forward")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
