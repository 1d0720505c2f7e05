"""Hook names, built and parsed in one place: ``seg3.h1.l0.hook_z_L``, ``pass0.step3.hook_fast``.

A name is a path of ``<key><index>`` parts (where in the step grid the value
was computed) and ``hook_<state>`` (what it is), like TransformerLens's
``get_act_name`` (``blocks.3.hook_resid_pre``). The model files build names
with :func:`act_name`; ``interp`` reads them back with :func:`parse_act_name`.

    act_name("z_L", seg=3, h=1, l=0)        -> "seg3.h1.l0.hook_z_L"
    act_name("fast", pass_=0, step=3)       -> "pass0.step3.hook_fast"   (``pass`` is a keyword)
    parse_act_name("seg3.h1.l0.hook_z_L")   -> ActName(where=(("seg", 3), ("h", 1), ("l", 0)), state="z_L")
    hook_state("seg3.h1.l0.hook_z_L")       -> "z_L"
    layer_state("pattern", 2)               -> "pattern.layer2"   (a trace's per-layer state name)
    parse_layer_state("pattern.layer2")     -> ("pattern", 2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"^([A-Za-z_]+?)(\d+)$")


def act_prefix(**where: int) -> str:
    """``act_prefix(pass_=0, step=3)`` -> ``"pass0.step3"`` (keyword order is name order; a trailing ``_`` is dropped)."""
    return ".".join(f"{key.rstrip('_')}{int(index)}" for key, index in where.items())


def act_name(state: str, prefix: str = "", **where: int) -> str:
    """The hook name of ``state`` at ``where`` (after an optional ``prefix`` from :func:`act_prefix`)."""
    parts = [p for p in (prefix, act_prefix(**where)) if p]
    return ".".join([*parts, f"hook_{state}"])


@dataclass(frozen=True)
class ActName:
    """A parsed hook name: ``where`` is the ``(key, index)`` path, ``state`` what the hook holds."""

    where: tuple[tuple[str, int], ...]
    state: str

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.where)

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(index for _, index in self.where)


def parse_act_name(name: str) -> ActName | None:
    """The parts of a hook name, or None when ``name`` is not ``<key><i>. ... .hook_<state>``."""
    *parts, last = name.split(".")
    if not last.startswith("hook_") or len(last) == len("hook_"):
        return None
    where = []
    for part in parts:
        m = _PART.match(part)
        if m is None:
            return None
        where.append((m.group(1), int(m.group(2))))
    return ActName(tuple(where), last[len("hook_"):])


def hook_state(name: str) -> str | None:
    """What a hook name holds (``"z_L"`` for ``seg3.h1.l0.hook_z_L``), or None when ``name`` is not a hook name."""
    a = parse_act_name(name)
    return a.state if a is not None else None


def layer_state(state: str, layer: int) -> str:
    """The trace's name of ``state`` recorded per layer: ``layer_state("pattern", 2)`` -> ``"pattern.layer2"``."""
    return f"{state}.layer{int(layer)}"


def parse_layer_state(name: str) -> tuple[str, int] | None:
    """``(state, layer)`` of a per-layer state name (``"pattern.layer2"`` -> ``("pattern", 2)``), else None."""
    state, _, last = name.rpartition(".")
    m = _PART.match(last)
    if not state or m is None or m.group(1) != "layer":
        return None
    return state, int(m.group(2))


__all__ = ["ActName", "act_name", "act_prefix", "hook_state", "layer_state", "parse_act_name", "parse_layer_state"]
