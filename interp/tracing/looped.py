"""``trace_looped``: trace any PyTorch model whose forward calls some module(s) repeatedly.

    import interp
    tr = interp.trace_looped(model, tokens, loop=["model.layers.3"])        # a Trace, one step per call
    tr = interp.trace_looped(hf_model, tokens, loop={"z_L": "model.L_module", "z_H": "model.H_module"})
    tr = interp.trace_looped(model, tokens)                                  # loop=None: found by a dry run

The model is wrapped (``models.looped.LoopedTraced``), planned on the inputs (a dry run per batch that
fixes the step order and checks the loop) and traced with the ordinary tracer, so the result is an
ordinary ``Trace``: per-step states ``state/<name>`` (the loop module's output) and ``state/<name>_in``
(its input), the logit lens of every state through the model's own final norm and head, per-step
metrics, and the analyses and the step viewer read it like any other trace. A model whose loop count
varies per input (early exit) records only the steps that ran (``Trace.steps_ran``): with
``batch_size=1`` (the default) each input's own count, with larger batches the batch's, or each row's
own when ``exit_steps`` says how many steps each row ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from interp.tracing.inputs import ArrayLike, as_token_tensor
from interp.tracing.trace import Trace
from interp.tracing.tracer import trace
from models.device import model_device
from models.looped import LoopedTraced, LoopError, auto_loop, default_call


def wrap_looped(model: nn.Module, inputs: ArrayLike, loop: str | Sequence[str] | dict[str, str] | None = None,
                head: str | None = "auto", norm: str | None = "auto", answer: str | None = None,
                record_inputs: bool = True, call: Callable[[nn.Module, torch.Tensor], Any] | None = None,
                lm: bool = True, batch_size: int = 1,
                exit_steps: Callable[[nn.Module, torch.Tensor], Any] | None = None) -> LoopedTraced:
    """``model`` wrapped for tracing and planned on ``inputs`` [N, L] (batches of ``batch_size``).

    ``loop``: module path(s) (``"model.layers.3"``, a list, or ``{state name: path}``); None finds them
    with a dry run (``models.looped.auto_loop``). ``head``/``norm``: the lens modules (paths, ``"auto"``,
    or ``norm=None`` for none). ``answer``: the state whose lens is the answer (default: the module the
    planned run calls last, e.g. HRM-Text's ``H_module``).
    ``exit_steps(model, tokens)`` -> [B] (called after each forward): how many steps each row of a batch really
    ran, for a model that exits per row inside a batch (default: every row counts the batch's steps).
    ``call(model, tokens)`` runs the model (default: ``input_ids=`` for transformers models).
    One-line ``LoopError`` (a ``ValueError``) for a loop that cannot be traced, before anything is written.
    The wrapper's hooks stay on ``model``'s loop modules until ``release()``.
    """
    if isinstance(model, LoopedTraced):
        return model
    x = as_token_tensor(inputs, "inputs").to(model_device(model))
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = [x[i:i + batch_size] for i in range(0, x.shape[0], batch_size)]
    if loop is None:  # the first batch that repeats a module (an early exit after one step repeats none)
        run = call or default_call
        for b in batches:
            try:
                loop = auto_loop(model, lambda: run(model, b))
                break
            except LoopError:
                if b is batches[-1]:
                    raise
    wrapped = LoopedTraced(model, loop, head=head, norm=norm, answer=answer, record_inputs=record_inputs,
                           call=call, lm=lm, exit_steps=exit_steps)
    try:
        return wrapped.plan(batches).eval()
    except BaseException:
        wrapped.release()
        raise


def trace_looped(model: nn.Module, inputs: ArrayLike, loop: str | Sequence[str] | dict[str, str] | None = None, *,
                 head: str | None = "auto", norm: str | None = "auto", answer: str | None = None,
                 labels: ArrayLike | None = None, record_inputs: bool = True,
                 call: Callable[[nn.Module, torch.Tensor], Any] | None = None, lm: bool = True,
                 batch_size: int = 1, exit_steps: Callable[[nn.Module, torch.Tensor], Any] | None = None,
                 **trace_kwargs: Any) -> Trace:
    """Trace every call of the loop module(s) of ``model`` on token ids ``inputs`` [N, L] -> ``Trace``.

    The arguments are ``wrap_looped``'s; ``labels`` and ``trace_kwargs`` (``states``, ``state_puzzles``,
    ``decode_latents``, ``confidence``, ``fwd_hooks``, ...) are ``interp.trace``'s. Language models
    (``lm=True``) default to next-token labels. ``model`` may also be an already planned ``LoopedTraced``
    (kept as it is); a wrapper made here is released afterwards, leaving no hook on ``model``.
    """
    own = not isinstance(model, LoopedTraced)
    wrapped = wrap_looped(model, inputs, loop, head, norm, answer, record_inputs, call, lm, batch_size, exit_steps)
    extra = {"looped": {"loop": dict(wrapped.cfg.loop), "lens": wrapped.lens_description(),
                        "model_class": wrapped.cfg.model_class}}
    try:
        return trace(wrapped, inputs, labels, batch_size=batch_size,
                     extra_meta={**extra, **trace_kwargs.pop("extra_meta", {})}, **trace_kwargs)
    finally:
        if own:  # the wrapper made here leaves no hook on the caller's model
            wrapped.release()


__all__ = ["trace_looped", "wrap_looped"]
