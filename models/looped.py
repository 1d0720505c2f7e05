"""Any PyTorch model whose forward calls some module(s) repeatedly, traced per call, its code unchanged.

Looped language models (Ouro-style: a shared stack applied N times with an exit gate; Huginn-style
recurrent depth; Universal Transformers; HRM-Text's two stacks) all have a forward that calls one or
more *loop modules* several times. ``LoopedTraced`` wraps such a model without touching its code:

* every call of a loop module is one **step**; a PyTorch forward hook passes the call's output (the
  state) through a step-named ``HookPoint`` ``seg0.step{k}.hook_<state>`` and hands the hook point's
  result back to the loop, and a forward pre-hook does the same for the call's input (the hidden state
  going in, ``seg0.step{k}.hook_<state>_in``). The recorded tensor is the very tensor the loop carries
  on, so the trace is exact by construction and a hook that returns a tensor intervenes on the run;
* the step grid comes from a **planning run** (``plan``): the model runs once per batch with counting
  hooks, which fixes the call order (``order``), checks every state keeps its shape from call to call
  and every named module is called, and finds whether the number of calls varies between inputs (early
  exit). A later run must call the modules in the planned order; it may stop early (``variable_steps``);
* the **logit lens** of a state is the model's own head after its own final norm (``decode``); ``"auto"``
  picks the output embeddings (``get_output_embeddings`` or the last ``Linear`` the forward calls) and
  the last norm module the forward calls after the loop's last call (none when the loop modules end
  with a norm themselves, as HRM-Text's stacks do, or when the loop module is that norm, as in Ouro).

``find_loop_modules`` lists the modules a forward calls more than once (the outermost ones), and
``auto_loop`` picks one loop from them. ``interp.tracing.looped.trace_looped`` is the entry point.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from .hook_names import act_name
from .hooks import HookedModel

RESERVED = frozenset({"logits", "q", "pattern", "resid", "fusion"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LoopError(ValueError):
    """A loop that cannot be traced (unknown or uncalled module, changing shape, ...); the message is one line."""


@dataclass
class LoopedTraceConfig:
    """What the tracer reads from ``model.cfg``: sizes, the loop modules and the lens, all filled by ``plan``."""

    loop: dict[str, str]  # state name -> module path
    head: str  # module path of the lens head
    norm: str | None  # module path of the lens norm (None: the head reads the state as it is)
    answer: str  # the state whose lens is the answer (default: the state of the planned run's last call)
    vocab_size: int = 0
    hidden_size: int = 0
    seq_len: int = 1 << 20
    num_heads: int = 1
    max_steps: int = 0  # steps of the longest planned run
    variable_steps: bool = False  # planned runs called the modules a different number of times
    order: list[str] = field(default_factory=list)  # state of each step of the longest run
    inputs: list[str] = field(default_factory=list)  # states whose module input is recorded (``<state>_in``)
    family: str = "looped"
    causal: bool = True
    halt_max_steps: int = 1  # one forward = one segment
    model_class: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- module look-up
def get_module(model: nn.Module, path: str, what: str = "module") -> nn.Module:
    """The submodule at dotted ``path`` (``""`` is the model itself); one-line ``LoopError`` if there is none."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        near = [n for n in names if n.split(".")[-1] == path.split(".")[-1]][:3] or names[:3]
        raise LoopError(f"{what} {path!r} does not exist in {type(model).__name__} "
                        f"(e.g. {', '.join(near) or 'no submodules'})") from None


def module_path(model: nn.Module, module: nn.Module) -> str | None:
    """The dotted path of ``module`` inside ``model`` (None if it is not a submodule)."""
    return next((n for n, m in model.named_modules() if m is module), None)


def state_names_for(paths: Sequence[str]) -> dict[str, str]:
    """State name -> path: the last part of each path (``model.L_module`` -> ``L_module``, ``layers.3`` ->
    ``layers_3``), longer where two would clash."""
    def name(p: str, depth: int) -> str:
        parts = [x for x in p.split(".") if x][-depth:] or ["model"]
        return re.sub(r"\W", "_", "_".join(parts))

    for depth in range(1, 1 + max((len(p.split(".")) for p in paths), default=1)):
        names = [name(p, depth if not name(p, 1).isdigit() else depth + 1) for p in paths]
        if len(set(names)) == len(names):
            return dict(zip(names, paths))
    raise LoopError(f"the loop modules {list(paths)} are listed more than once")


def _is_norm(m: nn.Module) -> bool:
    return "norm" in type(m).__name__.lower() or isinstance(m, (nn.LayerNorm, nn.GroupNorm))


def _ends_with_norm(m: nn.Module) -> bool:
    """Whether the last child registered in ``m`` (recursively) is a norm, as in HRM-Text's stacks."""
    while True:
        kids = list(m.children())
        if not kids:
            return _is_norm(m)
        m = kids[-1]


def split_output(output: Any) -> tuple[torch.Tensor | None, Callable[[torch.Tensor], Any]]:
    """The state tensor of a module's output and a function rebuilding the output around a replacement."""
    if isinstance(output, torch.Tensor):
        return output, lambda t: t
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0], lambda t: type(output)((t, *output[1:]))
    return None, lambda t: output


def _logits_of(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if getattr(out, "logits", None) is not None:
        return out.logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise LoopError(f"the model's forward returned {type(out).__name__}, not logits (a tensor, .logits or a tuple)")


def default_call(model: nn.Module, tokens: torch.Tensor) -> Any:
    """How a model is run on token ids: ``model(input_ids=..., use_cache=False)`` for transformers models."""
    if hasattr(getattr(model, "config", None), "use_cache"):
        return model(input_ids=tokens, use_cache=False)
    return model(tokens)


# ----------------------------------------------------------------------------- discovery (dry run)
def call_log(model: nn.Module, run: Callable[[], Any]) -> list[tuple[str, tuple[int, ...]]]:
    """Every submodule call of one ``run()`` with the shape of its output's tensor (``()`` if none), in the
    order the calls return (post-order)."""
    log: list[tuple[str, tuple[int, ...]]] = []

    def note(name: str, output: Any) -> None:
        t = split_output(output)[0]
        log.append((name, tuple(t.shape) if t is not None else ()))

    handles = [m.register_forward_hook(lambda mod, a, o, n=n: note(n, o)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return log


def find_loop_modules(model: nn.Module, run: Callable[[], Any]) -> dict[str, int]:
    """The outermost modules ``run()`` calls more than once, with their call counts, in first-call order.

    A module inside a repeated module is repeated because its parent is; only the parent is listed
    (HRM-Text: ``model.L_module`` and ``model.H_module``; Ouro: each ``model.layers.i`` and ``model.norm``).
    """
    return _outermost_repeated([n for n, _ in call_log(model, run)])


def _outermost_repeated(log: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in log:
        counts[n] = counts.get(n, 0) + 1
    rep = [n for n in dict.fromkeys(log) if counts[n] > 1]
    first = {n: i for i, n in reversed(list(enumerate(log)))}
    outer = [n for n in rep if not any(n.startswith(p + ".") for p in rep if p != n)]
    return {n: counts[n] for n in sorted(outer, key=first.__getitem__)}


def auto_loop(model: nn.Module, run: Callable[[], Any]) -> list[str]:
    """The loop modules to trace when none are named: the outermost repeated modules called within the loop
    (see the comment below), except that modules called in a fixed cycle the same number of times (the stages
    of one loop body: Ouro's layers, its norm, its exit gate; Huginn's adapter and core blocks) are one loop,
    traced at the cycle's last module with a [batch, positions, hidden] output of the body's width (the state
    after each full pass: Ouro's norm, not its exit gate)."""
    full = call_log(model, run)
    log = [n for n, _ in full]
    found = _outermost_repeated(log)
    if not found:
        raise LoopError(f"{type(model).__name__} calls no module more than once per forward; nothing loops")
    shapes = dict(full)
    # the loop body: the modules called most often; another repeated module belongs to the loop only if it is
    # called between the body's first and last calls (HRM-Text's H_module), not only before or after them
    # (a final norm used twice, as Huginn's ln_f)
    top = max(found.values())
    body = [n for n, c in found.items() if c == top]
    at = [i for i, n in enumerate(log) if n in body]
    inside = [n for n in found if n in body or any(at[0] < i < at[-1] for i, m in enumerate(log) if m == n)]
    seq = [n for n in log if n in body]
    if len(inside) == len(body) > 1:
        k = len(body)
        cycle = seq[:k]
        if len(set(cycle)) == k and all(seq[i] == cycle[i % k] for i in range(len(seq))):
            width = shapes[cycle[0]]
            states = [n for n in cycle if len(shapes[n]) == 3 and shapes[n] == width]
            return [states[-1] if states else cycle[-1]]
    return inside


# ----------------------------------------------------------------------------- the wrapper
class LoopedTraced(HookedModel):
    """A model with step hook points on every call of its loop module(s); see the module docstring."""

    logits_decode_answer = False  # the model's logits may follow more layers than the lens (Huginn's coda)

    def __init__(self, model: nn.Module, loop: str | Sequence[str] | dict[str, str], head: str | None = "auto",
                 norm: str | None = "auto", answer: str | None = None, record_inputs: bool = True,
                 call: Callable[[nn.Module, torch.Tensor], Any] | None = None, lm: bool = True,
                 exit_steps: Callable[[nn.Module, torch.Tensor], Any] | None = None):
        super().__init__()
        self.inner = model
        if isinstance(loop, str):
            loop = [p.strip() for p in loop.split(",") if p.strip()]
        if not loop:
            raise LoopError("name at least one loop module")
        names = dict(loop) if isinstance(loop, dict) else state_names_for(list(loop))
        for s, p in names.items():
            if not isinstance(s, str) or not _NAME.match(s) or s in RESERVED or s.endswith("_in"):
                raise LoopError(f"state name {s!r} (for {p}) must be an identifier, not ending in _in, "
                                f"not one of {sorted(RESERVED)}")
            get_module(model, p, "loop module")
        if len(set(names.values())) != len(names):
            raise LoopError(f"a loop module is named twice: {list(names.values())}")
        if answer is not None and answer not in names:
            raise LoopError(f"answer state {answer!r} is not one of the loop states {list(names)}")
        self._call = call or default_call
        # per-row early exit inside a batch: after each forward, ``exit_steps(model, tokens)`` -> [B] steps that count
        self._exit_steps = exit_steps
        self.row_steps: torch.Tensor | None = None
        self.record_inputs = bool(record_inputs)
        self._answer = answer
        self.cfg = LoopedTraceConfig(loop=names, head=head or "auto", norm=norm, answer=answer or list(names)[-1],
                                     causal=bool(lm), model_class=type(model).__name__)
        c = getattr(model, "config", None)
        if getattr(c, "max_position_embeddings", None):
            self.cfg.seq_len = int(c.max_position_embeddings)
        if getattr(c, "num_attention_heads", None):
            self.cfg.num_heads = int(c.num_attention_heads)
        self.state_names = tuple(names)
        self.answer_state = self.cfg.answer
        self.prefix_len = 0
        self._calls: list[str] | None = None
        self._plan: list[tuple[str, tuple[int, ...]]] | None = None
        self._plan_in: dict[str, set[tuple[int, ...]]] | None = None
        self._seg = 0
        self._hooked = 0
        self._handles = []
        for s, p in names.items():
            m = model.get_submodule(p)
            self._handles.append(m.register_forward_pre_hook(self._in_hook(s), with_kwargs=True))
            self._handles.append(m.register_forward_hook(self._out_hook(s)))
        self._head: nn.Module | None = None
        self._norm: nn.Module | None = None

    def call_model(self, tokens: torch.Tensor) -> Any:
        """Run the wrapped model on token ids as the tracer does (its ``call``), outside any trace: no step
        hook point fires, and what it returns is the model's own output."""
        return self._call(self.inner, tokens.long())

    def release(self) -> None:
        """Take this wrapper's hooks off the wrapped model's loop modules (the wrapper no longer records)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    # ----- planning -------------------------------------------------------
    @property
    def planned(self) -> bool:
        return bool(self.cfg.order)

    @property
    def variable_steps(self) -> bool:
        return self.cfg.variable_steps

    def plan(self, batches: Iterator[torch.Tensor] | Sequence[torch.Tensor]) -> "LoopedTraced":
        """Run the model once per batch of token ids with counting hooks: fix the step order, the sizes and the lens.

        One-line ``LoopError`` when a loop module is never called, a state changes shape between calls,
        the modules run in orders that are not prefixes of one another, or the lens cannot read a state.
        """
        runs: list[list[tuple[str, tuple[int, ...]]]] = []
        first_log: list[str] | None = None
        in_shapes: dict[str, set[tuple[int, ...]]] = {}
        for x in batches:
            x = x.long()
            self._plan, self._plan_in = [], in_shapes
            try:
                if first_log is None:
                    first_log = [n for n, _ in call_log(self.inner, lambda: self._call(self.inner, x))]
                    sample = x
                else:
                    with torch.no_grad():
                        self._call(self.inner, x)
            finally:
                run, self._plan, self._plan_in = self._plan, None, None
            runs.append(run)
            self._check_run(run, x)
        if first_log is None:
            raise LoopError("no inputs to plan the loop on")
        longest = max(runs, key=len)
        order = [s for s, _ in longest]
        for r in runs:
            if [s for s, _ in r] != order[:len(r)]:
                raise LoopError(f"the loop modules ran in different orders on different inputs "
                                f"({_fmt(r)} vs {_fmt(longest)}); trace those inputs separately")
        self._resolve_lens(first_log)
        shape = longest[-1][1]
        self.cfg.order = order
        self.cfg.answer = self.answer_state = self._answer or order[-1]  # default: the module the loop ends with
        outs = {s: {sh[1:] for t, sh in longest if t == s} for s in self.cfg.loop}
        # a module input is recorded where it is a state like the output (not e.g. an embedding's token ids)
        self.cfg.inputs = [s for s in self.cfg.loop if self.record_inputs
                           and {sh[1:] for sh in in_shapes.get(s, {()}) if sh} == outs[s]
                           and all(len(sh) == 3 for sh in in_shapes.get(s, {()}))]
        self.cfg.max_steps = len(order)
        self.cfg.variable_steps = len({len(r) for r in runs}) > 1 or self._exit_steps is not None
        self.cfg.hidden_size = int(shape[-1])
        self.prefix_len = int(shape[1]) - int(sample.shape[1])
        if not self.cfg.causal:  # a puzzle-style model: every input has the planned length
            self.cfg.seq_len = int(sample.shape[1])
        with torch.no_grad():
            state = torch.zeros((1, *shape[1:]), dtype=next(self.inner.parameters()).dtype,
                                device=next(self.inner.parameters()).device)
            try:
                lens = self.decode(state)
            except Exception as e:  # noqa: BLE001 - any failure of a user module is one line
                raise LoopError(f"the lens ({self.lens_description()}) cannot read a {list(shape)} state: "
                                f"{type(e).__name__}: {' '.join(str(e).split())[:160]}") from None
        self.cfg.vocab_size = int(lens.shape[-1])
        self.ensure_segment_hooks(1)
        return self

    def _check_run(self, run: list[tuple[str, tuple[int, ...]]], x: torch.Tensor) -> None:
        called = {s for s, _ in run}
        for s, p in self.cfg.loop.items():
            if s not in called:
                raise LoopError(f"loop module {p!r} is never called by {type(self.inner).__name__}'s forward")
        seen: dict[str, tuple[int, ...]] = {}
        for k, (s, shape) in enumerate(run):
            if not shape:
                raise LoopError(f"loop module {self.cfg.loop[s]!r} returns no tensor (nor a tuple starting with one)")
            if len(shape) != 3 or shape[0] != x.shape[0] or shape[1] < x.shape[1]:
                raise LoopError(f"loop module {self.cfg.loop[s]!r} returns a {list(shape)} tensor; a state must be "
                                f"[batch, positions, hidden] for {list(x.shape)} token ids")
            if s in seen and seen[s] != shape:
                raise LoopError(f"loop module {self.cfg.loop[s]!r} changed its state shape between calls "
                                f"({list(seen[s])} before, {list(shape)} at step {k})")
            seen[s] = shape

    def _resolve_lens(self, log: list[str]) -> None:
        """Fill ``cfg.head`` / ``cfg.norm`` ("auto" -> a module path) and keep the modules."""
        m = self.inner
        head = self.cfg.head
        if head == "auto":
            emb = m.get_output_embeddings() if hasattr(m, "get_output_embeddings") else None
            path = module_path(m, emb) if isinstance(emb, nn.Module) else None
            if path is None:
                path = next((n for n in reversed(log) if isinstance(m.get_submodule(n), nn.Linear)), None)
            if path is None:
                raise LoopError(f"no lens head found in {type(m).__name__} (name one: head=... / --lens-head)")
            head = path
        self._head = get_module(m, head, "lens head")
        self.cfg.head = head
        norm = self.cfg.norm
        if norm == "auto":
            loops = [m.get_submodule(p) for p in self.cfg.loop.values()]
            last = max(i for i, n in enumerate(log) if n in self.cfg.loop.values())
            after = [n for n in log[last + 1:] if _is_norm(m.get_submodule(n)) and n not in self.cfg.loop.values()
                     and not any(n.startswith(p + ".") for p in self.cfg.loop.values())]
            norm = None if all(_ends_with_norm(x) or _is_norm(x) for x in loops) or not after else after[-1]
        self._norm = get_module(m, norm, "lens norm") if norm else None
        self.cfg.norm = norm

    def lens_description(self) -> str:
        return f"{self.cfg.head}({self.cfg.norm}(state))" if self.cfg.norm else f"{self.cfg.head}(state)"

    # ----- hook grid ------------------------------------------------------
    def step_hook_names(self, seg: int) -> list[str]:
        names = []
        for k, s in enumerate(self.cfg.order):
            if s in self.cfg.inputs:
                names.append(act_name(f"{s}_in", seg=seg, step=k))
            names.append(act_name(s, seg=seg, step=k))
        return names

    def segment_hook_names(self, seg: int) -> list[str]:
        return [*self.step_hook_names(seg), act_name("logits", seg=seg)]

    def ensure_segment_hooks(self, n_segments: int) -> None:
        if not self.planned:
            raise LoopError("plan the loop first (model.plan(batches of token ids))")
        self._extend_hook_grid("_hooked", n_segments, self.segment_hook_names)

    def _in_hook(self, state: str):
        def fn(module: nn.Module, args: tuple, kwargs: dict) -> tuple | None:
            if self._plan_in is not None:
                x = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("hidden_states")
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) and x.is_floating_point() else ()
                self._plan_in.setdefault(state, set()).add(shape)
                return None
            if self._calls is None or state not in self.cfg.inputs:
                return None
            k = len(self._calls)
            self._check_order(k, state)
            if args and isinstance(args[0], torch.Tensor):
                new = self.hook(act_name(f"{state}_in", seg=self._seg, step=k), args[0])
                return None if new is args[0] else ((new, *args[1:]), kwargs)
            if isinstance(kwargs.get("hidden_states"), torch.Tensor):
                new = self.hook(act_name(f"{state}_in", seg=self._seg, step=k), kwargs["hidden_states"])
                return None if new is kwargs["hidden_states"] else (args, {**kwargs, "hidden_states": new})
            return None
        return fn

    def _check_order(self, k: int, state: str) -> None:
        """Call ``k`` of the run must be the planned one (a later or other call has no hook point)."""
        order = self.cfg.order
        if k >= len(order) or order[k] != state:
            ran = [*(self._calls or [])[:8], state]
            raise LoopError(f"the loop modules ran in an order the planning run did not (call {k}: {state}; so far "
                            f"{','.join(ran)}); plan on these inputs first (a model that loops differently from run "
                            f"to run cannot be traced)")

    def _out_hook(self, state: str):
        def fn(module: nn.Module, args: tuple, output: Any) -> Any:
            t, rebuild = split_output(output)
            if self._plan is not None:
                self._plan.append((state, tuple(t.shape) if t is not None else ()))
                return None
            calls = self._calls
            if calls is None:  # the wrapped model run directly, not through this wrapper
                return None
            k = len(calls)
            self._check_order(k, state)
            calls.append(state)
            new = self.hook(act_name(state, seg=self._seg, step=k), t)
            return None if new is t else rebuild(new)
        return fn

    # ----- lens and states ------------------------------------------------
    def decode(self, state: torch.Tensor) -> torch.Tensor:
        """Logit lens: the model's head after its final norm (``lens_description``), prefix positions dropped."""
        x = self._norm(state) if self._norm is not None else state
        return self._head(x)[:, self.prefix_len:]

    def halt_logits(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """No halting head: NaN (an exit gate, when there is one, is read from its own module)."""
        nan = torch.full((state.shape[0],), float("nan"), device=state.device)
        return nan, nan

    def fresh_states(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """No carried state is known before the first call (its input is recorded as ``<state>_in``)."""
        return {}

    def check_inputs(self, tokens: torch.Tensor, puzzle_ids: Any = None) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
            raise ValueError(f"tokens must be a [batch, length] tensor, got {getattr(tokens, 'shape', type(tokens))}")

    # ----- running --------------------------------------------------------
    def run(self, tokens: torch.Tensor, seg: int = 0) -> torch.Tensor:
        """One forward of the wrapped model with the step hooks live; returns its logits."""
        self.check_inputs(tokens)
        self.ensure_segment_hooks(seg + 1)
        calls: list[str] = []
        self._calls, self._seg = calls, seg
        try:
            out = self._call(self.inner, tokens.long())
        finally:
            self._calls = None
        if not calls or (len(calls) != len(self.cfg.order) and not self.cfg.variable_steps):
            raise LoopError(f"the loop modules ran {len(calls)} times, {len(self.cfg.order)} in the planning run")
        self.row_steps = None
        if self._exit_steps is not None:
            rows = torch.as_tensor(self._exit_steps(self.inner, tokens)).reshape(-1).long().cpu()
            if rows.shape != (tokens.shape[0],) or int(rows.min()) < 1 or int(rows.max()) > len(calls):
                raise LoopError(f"exit_steps must give one step count in 1..{len(calls)} per row "
                                f"({tokens.shape[0]} rows), got {rows.tolist()[:8]}")
            self.row_steps = rows
        return self.hook(act_name("logits", seg=seg), _logits_of(out))

    def segment(self, states: dict[str, torch.Tensor], inputs: torch.Tensor, puzzle_ids: Any = None,
                seg: int = 0) -> tuple[dict[str, torch.Tensor], Any]:
        if states:
            raise ValueError("a looped model starts from its own input: custom initial states cannot be traced")
        return {}, SimpleNamespace(logits=self.run(inputs, seg))

    def iter_segments(self, inputs: torch.Tensor, puzzle_ids: Any = None, n_segments: int | None = None,
                      states: dict[str, torch.Tensor] | None = None) -> Iterator[tuple[int, dict, Any]]:
        """The tracer's call: one forward (a looped model carries nothing between forwards)."""
        if n_segments not in (None, 1):
            raise ValueError("a looped model runs one forward per input: n_segments must be 1")
        yield 0, *self.segment(states or {}, inputs, puzzle_ids, 0)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (what ``run_with_cache`` calls; every step hook fires)."""
        return self.run(tokens, 0)


def _fmt(run: list[tuple[str, tuple[int, ...]]]) -> str:
    s = ",".join(x for x, _ in run[:8])
    return s + (f",... ({len(run)} calls)" if len(run) > 8 else "")


__all__ = ["LoopError", "LoopedTraced", "LoopedTraceConfig", "auto_loop", "call_log", "default_call",
           "find_loop_modules", "get_module", "module_path", "split_output", "state_names_for"]
