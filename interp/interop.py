"""Our step hook points seen through TransformerLens and nnsight.

Every per-step quantity of our models already has its own identity module,
named by its step (``seg1.h0.hook_z_H``, ``pass0.step3.hook_fast``), so both
libraries work without special support for recurrence:

* ``to_transformer_lens(model)`` swaps each of our ``HookPoint`` modules for a
  TransformerLens ``HookPoint`` of the same name (a subclass that still serves
  our own ``run_with_cache``/``run_with_hooks``, so both APIs keep working on
  the same model) and returns a ``HookedRootModule`` whose ``hook_dict`` holds
  exactly our names. TransformerLens's ``run_with_cache`` then returns every
  step, not just the last application of a shared module.
* ``to_nnsight(model)`` is ``NNsight(model)``: read or set
  ``nn_model.seg1.h0.hook_z_H.output`` inside ``trace``. nnsight requires
  requests in execution order; ``nnsight_cache`` orders them for you.

Both libraries are imported lazily (they take seconds to import).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from models.hook_names import parse_act_name
from models.hooks import HookedModel, NameFilter

_LENS_CLASSES: dict[str, type] = {}


def _lens_hook_point_class() -> type:
    """A TransformerLens ``HookPoint`` whose handles also answer our API (``remove()``, ``id``)."""
    if "HookPoint" not in _LENS_CLASSES:
        from transformer_lens.hook_points import HookPoint as LensHookPoint
        from transformer_lens.hook_points import LensHandle

        class _Handle(LensHandle):
            def remove(self) -> None:
                self.hook.remove()

            @property
            def id(self) -> int:
                return self.hook.id

        class HookPoint(LensHookPoint):  # same class name: HookedModel.refresh_hook_index finds it
            """TransformerLens hook point that also serves ``models.hooks.HookedModel``."""

            def add_hook(self, hook, dir="fwd", **kwargs):  # noqa: A002 - TransformerLens's name
                handle = super().add_hook(hook, dir=dir, **kwargs)
                handle.__class__ = _Handle
                return handle

        _LENS_CLASSES["HookPoint"] = HookPoint
    return _LENS_CLASSES["HookPoint"]


def use_lens_hook_points(model: HookedModel) -> int:
    """Replace our hook points by TransformerLens ones (same names, in place); returns how many changed."""
    lens_cls = _lens_hook_point_class()
    changed = 0
    for name, point in model.hook_dict.items():
        if isinstance(point, lens_cls):
            continue
        if point.fwd_hooks or point._forward_hooks:
            raise ValueError(f"hook point {name!r} has hooks attached; call model.reset_hooks() first")
        parent_name, _, leaf = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new = lens_cls()
        new.name = name
        parent.add_module(leaf, new)  # replaces the entry under the same key
        changed += 1
    if changed:
        model.refresh_hook_index()
    return changed


def _ensure_depth(model: nn.Module, args: tuple, kwargs: dict) -> tuple[str, int] | None:
    """Create hook points for the segments/passes a ``forward(*args, **kwargs)`` call runs.

    Returns ("seg" | "pass", how many) when the model is one of ours with a depth argument.
    """
    try:
        bound = inspect.signature(model.forward).bind_partial(*args, **kwargs).arguments
    except TypeError:
        return None  # let forward raise its own error
    if hasattr(model, "ensure_segment_hooks"):
        n = bound.get("n_segments") or model.cfg.halt_max_steps
        if isinstance(n, int) and n >= 1:
            model.ensure_segment_hooks(n)
            return "seg", n
    elif hasattr(model, "ensure_pass_hooks"):
        n = bound.get("n_passes") or model.cfg.passes
        if isinstance(n, int) and n >= 1:
            model.ensure_pass_hooks(n)
            return "pass", n
    return None


def _fires(name: str, depth: tuple[str, int] | None) -> bool:
    """Whether hook ``name`` fires in a run of ``depth`` segments/passes (top-level hooks always do)."""
    if depth is None:
        return True
    kind, n = depth
    parsed = parse_act_name(name)
    if parsed is not None and parsed.keys[:1] == (kind,):
        return parsed.indices[0] < n
    return True


def _root_module_class() -> type:
    if "View" in _LENS_CLASSES:
        return _LENS_CLASSES["View"]
    from transformer_lens import HookedRootModule

    class TransformerLensView(HookedRootModule):
        """A ``HookedRootModule`` over one of our models; hook names are our names."""

        def __init__(self, model: HookedModel):
            super().__init__()
            self.model = model
            self._sync()

        def _sync(self) -> bool:
            changed = use_lens_hook_points(self.model)
            if changed or not hasattr(self, "hook_dict"):
                self.setup()
            return bool(changed)

        def setup(self) -> None:  # names without the "model." prefix: exactly ours
            self.mod_dict = {n: m for n, m in self.model.named_modules() if n}
            self.hook_dict = dict(self.model.hook_dict)
            for name, point in self.hook_dict.items():
                point.name = name

        def _prepare(self, args: tuple, kwargs: dict) -> None:
            _ensure_depth(self.model, args, kwargs)
            if self._sync() and self.context_level > 0:
                raise ValueError(
                    "this call runs deeper than the view's hook points; use run_with_cache/run_with_hooks "
                    "(they add them first) or call the view once without hooks"
                )

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            self._prepare(args, kwargs)
            return self.model(*args, **kwargs)

        def run_with_cache(self, *args: Any, **kwargs: Any) -> Any:
            _ensure_depth(self.model, args, {k: v for k, v in kwargs.items() if k in ("n_segments", "n_passes", "puzzle_ids")})
            self._sync()
            return super().run_with_cache(*args, **kwargs)

        def run_with_hooks(self, *args: Any, **kwargs: Any) -> Any:
            _ensure_depth(self.model, args, {k: v for k, v in kwargs.items() if k in ("n_segments", "n_passes", "puzzle_ids")})
            self._sync()
            return super().run_with_hooks(*args, **kwargs)

    _LENS_CLASSES["View"] = TransformerLensView
    return TransformerLensView


def to_transformer_lens(model: HookedModel) -> nn.Module:
    """A ``transformer_lens.HookedRootModule`` view of ``model`` sharing its weights and hook points.

    ``view.run_with_cache(inputs)`` returns ``(output, {hook_name: tensor})`` with
    the same names and values as ``model.run_with_cache(inputs)``;
    ``view.run_with_hooks(inputs, fwd_hooks=[(name, fn)])`` patches like ours.
    TransformerLens name filters are exact names, lists or predicates (not globs).
    """
    if not isinstance(model, HookedModel):
        raise TypeError(f"expected one of our HookedModel models, got {type(model).__name__}")
    return _root_module_class()(model)


def to_nnsight(model: HookedModel) -> Any:
    """``nnsight.NNsight(model)`` after creating hook points for the configured depth.

    Inside ``with nn_model.trace(inputs):`` read ``nn_model.seg1.h0.hook_z_H.output.save()``
    or assign ``nn_model.seg1.h0.hook_z_H.output = tensor``, in execution order.
    """
    from nnsight import NNsight

    if not isinstance(model, HookedModel):
        raise TypeError(f"expected one of our HookedModel models, got {type(model).__name__}")
    _ensure_depth(model, (), {})
    return NNsight(model)


def nnsight_cache(
    nn_model: Any, *args: Any, names_filter: NameFilter = None, **kwargs: Any
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Run ``nn_model`` (from ``to_nnsight``) and save the hook outputs that match ``names_filter``.

    Like ``model.run_with_cache`` but through nnsight; names are requested in
    execution (creation) order, which nnsight requires.
    """
    model = nn_model._module
    depth = _ensure_depth(model, args, kwargs)
    names = [n for n in model.hook_names(names_filter) if _fires(n, depth)]  # aliases resolved there
    if not names:
        raise KeyError(f"no hook point matches {names_filter!r}")
    saved: dict[str, Any] = {}
    with nn_model.trace(*args, **kwargs):
        for name in names:
            saved[name] = nn_model.get(name).output.save()
        out = nn_model.output.save()
    return out, {k: v for k, v in saved.items() if isinstance(v, torch.Tensor)}


__all__ = ["to_transformer_lens", "to_nnsight", "nnsight_cache", "use_lens_hook_points"]
