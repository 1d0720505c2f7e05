"""Cost of the generic looped tracer (``interp.trace_looped``) vs the dedicated HRM-Text path and the plain forward.

A random ``HrmTextConfig`` of ``bench_hrm_text.py``'s size ``s`` (hidden 256, 2 layers per stack, H 2 x L 3
cycles, vocab 8000) on one sequence, timed interleaved over repeats (CPU time of this process, robust to
other jobs), in these variants:

* ``plain``          ``HrmTextForCausalLM(input_ids)`` under no_grad (ratio 1.00)
* ``dedicated``      ``interp.trace`` of ``models.hrm_text``'s wrapper, summaries only, lens of every state
* ``generic``        ``interp.trace_looped(hf, x, loop=...)``: wrap, planning run, trace (same settings)
* ``generic-plan``   the same with a wrapper planned once beforehand (the trace alone)

Prints, per variant, the median time and the mean ratio to ``plain`` with a 95% bootstrap interval over the
repeats (``common.stats.bootstrap_ci``).

Usage::

    python benchmarks/bench_looped.py --threads 1 --repeats 10 --seq 64
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli_format import Parser, UsageError, print_error  # noqa: E402
from common.cli_options import add_threads_option, set_threads  # noqa: E402
from common.cli_types import bounded_int  # noqa: E402


def main() -> int:
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=bounded_int(2, 1000), default=10, help="timed repeats per variant")
    p.add_argument("--seq", type=bounded_int(2, 4096), default=64, help="tokens in the sequence")
    add_threads_option(p)
    try:
        args = p.parse_args()
    except UsageError as e:  # one line, status 2
        return print_error(str(e))
    set_threads(args)
    import numpy as np
    import torch
    from transformers import HrmTextConfig, HrmTextForCausalLM

    import interp
    from common.stats import bootstrap_ci
    from models.hrm_text import wrap_hrm_text

    cfg = HrmTextConfig(vocab_size=8000, hidden_size=256, intermediate_size=768, num_hidden_layers=2,
                        num_attention_heads=4, head_dim=64, H_cycles=2, L_cycles=3, max_position_embeddings=4096)
    torch.manual_seed(0)
    hf = HrmTextForCausalLM(cfg).eval()
    x = torch.randint(0, 8000, (1, args.seq))
    loop = {"z_H": "model.H_module", "z_L": "model.L_module"}
    ded = wrap_hrm_text(hf)
    planned = interp.wrap_looped(hf, x, loop)
    kw = dict(states="summary", confidence=False)

    def plain():
        with torch.no_grad():
            hf(input_ids=x)

    variants = {
        "plain": plain,
        "dedicated": lambda: interp.trace(ded, x, **kw),
        "generic": lambda: interp.trace_looped(hf, x, loop, **kw),
        "generic-plan": lambda: interp.trace(planned, x, **kw),
    }
    for f in variants.values():  # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for k, f in variants.items():
            t0 = time.process_time()
            f()
            times[k].append(time.process_time() - t0)
    base = np.array(times["plain"])
    print(f"HRM-Text size s, 1 x {args.seq} tokens, {args.repeats} repeats, threads {args.threads}, "
          f"torch {torch.__version__}")
    print(f"{'variant':<14} {'median s':>9} {'ratio to plain (mean, 95% bootstrap CI)':>42}")
    for k, v in times.items():
        r = np.array(v) / base
        lo, hi = bootstrap_ci(r)
        print(f"{k:<14} {statistics.median(v):>9.4f} {r.mean():>20.2f} [{lo:.2f}, {hi:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
