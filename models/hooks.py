"""Step-indexed hook points.

A recurrent model reuses the same module at every step, so a single hook on
that module would be overwritten step after step (TransformerLens keeps only
the last value). Here every per-step quantity gets its *own* identity module,
named with its step, e.g. ``seg3.h1.l0.hook_z_L``. The names are module paths
of the model (``model.seg3.h1.l0.hook_z_L``), so:

* our own ``run_with_cache`` / ``run_with_hooks`` see every step,
* TransformerLens (``interp.interop``) sees one ``HookPoint`` per step,
* nnsight reads or sets ``model.seg3.h1.hook_z_H.output`` without iteration.

``HookPoint`` mirrors TransformerLens's attribute names (``name``,
``fwd_hooks``, ``ctx``, ``add_hook``, ``remove_hooks``) so an adapter can hand
these modules to TransformerLens unchanged. With no hook attached a hook point
is a plain identity call (a few microseconds per step).
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Union

import torch
from torch import nn

from .hook_names import expand_aliases

HookFn = Callable[..., Union[torch.Tensor, None]]
NameFilter = Union[str, Sequence[str], Callable[[str], bool], None]


class HookPoint(nn.Module):
    """Identity module marking one per-step activation; hooks may read or replace it."""

    def __init__(self) -> None:
        super().__init__()
        self.name: str | None = None
        self.fwd_hooks: list[torch.utils.hooks.RemovableHandle] = []
        self.bwd_hooks: list[torch.utils.hooks.RemovableHandle] = []
        self.ctx: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def add_hook(self, hook: HookFn, dir: str = "fwd", **_: Any) -> torch.utils.hooks.RemovableHandle:
        """Attach ``hook(tensor, hook=self) -> None | Tensor``; a returned tensor replaces the activation."""
        if dir != "fwd":
            raise ValueError("only forward hooks are supported on step hook points")

        def full_hook(module: nn.Module, inputs: tuple, output: torch.Tensor):
            return hook(output, hook=self)

        handle = self.register_forward_hook(full_hook)
        self.fwd_hooks.append(handle)
        return handle

    def remove_hooks(self, dir: str = "fwd", **_: Any) -> None:
        for handle in self.fwd_hooks:
            handle.remove()
        self.fwd_hooks = []

    def clear_context(self) -> None:
        self.ctx = {}

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def matches_filter(name: str, names_filter: NameFilter) -> bool:
    if names_filter is None:
        return True
    if callable(names_filter):
        return bool(names_filter(name))
    if isinstance(names_filter, str):
        return fnmatch.fnmatchcase(name, names_filter)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in names_filter)


class HookedModel(nn.Module):
    """Base class: owns a static grid of step hook points and the cache/intervention API.

    Subclasses call ``self.setup_hooks(names)`` once in ``__init__`` with every
    hook name their forward can emit, then ``x = self.hook(name, x)`` at each step.
    """

    def setup_hooks(self, names: Iterable[str]) -> None:
        """Create one ``HookPoint`` per dotted name, as nested ``ModuleDict`` children of the model.

        May be called again to add names (e.g. more segments); existing names are kept.
        """
        index: dict[str, HookPoint] = dict(getattr(self, "_hook_index", {}))
        for name in names:
            if name in index:
                continue
            *parents, leaf = name.split(".")
            container: nn.Module = self
            for part in parents:
                child = container._modules.get(part)
                if child is None:
                    child = nn.ModuleDict()
                    container.add_module(part, child)
                container = child
            point = HookPoint()
            point.name = name
            container.add_module(leaf, point)
            index[name] = point
            # a point created while a ``hooks()`` context is open (e.g. a segment past
            # halt_max_steps) gets that context's matching hooks too
            for pairs, handles in getattr(self, "_open_hook_sets", []):
                handles.extend(point.add_hook(fn) for f, fn in pairs if matches_filter(name, f))
        # a plain dict (not registered twice as submodules) for O(1) lookup in forward
        object.__setattr__(self, "_hook_index", index)

    def remove_hook_points(self, predicate: Callable[[str], bool]) -> None:
        """Delete the hook points whose name satisfies ``predicate`` (and containers left empty)."""
        for name in [n for n in self._hook_index if predicate(n)]:
            parts = name.split(".")
            chain: list[nn.Module] = [self]
            for part in parts[:-1]:
                chain.append(chain[-1]._modules[part])
            del chain[-1]._modules[parts[-1]]
            for depth in range(len(parts) - 1, 0, -1):  # drop containers this left empty
                if chain[depth]._modules:
                    break
                del chain[depth - 1]._modules[parts[depth - 1]]
            del self._hook_index[name]

    def refresh_hook_index(self) -> None:
        """Re-read hook points from the module tree (after an adapter swapped them)."""
        index = {}
        for name, module in self.named_modules():
            if name and type(module).__name__ == "HookPoint":
                module.name = name
                index[name] = module
        object.__setattr__(self, "_hook_index", index)

    def hook(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Pass ``x`` through the hook point ``name`` (identity unless a hook replaces it)."""
        try:
            point = self._hook_index[name]
        except KeyError:
            raise KeyError(f"model has no hook point {name!r}") from None
        return point(x)

    @property
    def hook_dict(self) -> dict[str, HookPoint]:
        return dict(self._hook_index)

    def hook_names(self, names_filter: NameFilter = None) -> list[str]:
        """All hook names (in creation order), optionally filtered by glob(s) or a predicate.

        Names and globs may use the TransformerLens-style aliases of ``models.hook_names``
        (``step.3.hook_resid_post``, ``step.*.blocks.0.attn.hook_pattern``).
        """
        names_filter = expand_aliases(names_filter, self._hook_index)
        return [n for n in self._hook_index if matches_filter(n, names_filter)]

    def reset_hooks(self) -> None:
        for point in self._hook_index.values():
            point.remove_hooks()

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Sequence[tuple[NameFilter, HookFn]] = ()) -> Iterator["HookedModel"]:
        """Temporarily attach ``(name_or_filter, fn)`` pairs; removed on exit even on error."""
        handles: list = []
        open_sets = self.__dict__.setdefault("_open_hook_sets", [])
        entry = (list(fwd_hooks), handles)
        try:
            for names_filter, fn in entry[0]:
                matched = self.hook_names(names_filter)
                if not matched:
                    raise KeyError(f"no hook point matches {names_filter!r}")
                for name in matched:
                    handles.append(self._hook_index[name].add_hook(fn))
            open_sets.append(entry)
            yield self
        finally:
            if any(e is entry for e in open_sets):
                open_sets[:] = [e for e in open_sets if e is not entry]
            for h in handles:
                h.remove()
            for point in self._hook_index.values():
                point.fwd_hooks = [h for h in point.fwd_hooks if h.id in point._forward_hooks]

    def _extend_hook_grid(self, counter: str, n: int, names_of: Callable[[int], Iterable[str]]) -> None:
        """Create the hook points of groups (segments, passes) ``0..n-1`` not made yet (idempotent).

        ``counter`` names the attribute remembering how many groups exist; ``names_of(k)`` lists group k's names.
        """
        have = getattr(self, counter, 0)
        if n > have:
            self.setup_hooks(name for k in range(have, n) for name in names_of(k))
            setattr(self, counter, n)

    def _hooks_for_call(self, args: tuple, kwargs: dict) -> None:
        """Create hook points a ``forward(*args, **kwargs)`` call will need before hooks attach (default: none)."""

    def run_with_hooks(self, *args: Any, fwd_hooks: Sequence[tuple[NameFilter, HookFn]] = (), **kwargs: Any) -> Any:
        """Run ``forward`` with temporary hooks (TransformerLens-style)."""
        self._hooks_for_call(args, kwargs)
        with self.hooks(fwd_hooks):
            return self(*args, **kwargs)

    def run_with_cache(
        self, *args: Any, names_filter: NameFilter = None, detach: bool = True, **kwargs: Any
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        """Run ``forward`` and return ``(output, {hook_name: tensor})`` for every hook that fired.

        Hook points that did not fire (e.g. segments beyond the run's depth) are absent.
        A ``names_filter`` that matches no hook point raises ``KeyError`` (a typo, not an empty cache).
        """
        self._hooks_for_call(args, kwargs)
        cache: dict[str, torch.Tensor] = {}

        def save(t: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = t.detach() if detach else t

        with self.hooks([(names_filter, save)] if names_filter is not None or self.hook_names() else []):
            out = self(*args, **kwargs)
        return out, cache
