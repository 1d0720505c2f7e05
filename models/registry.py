"""Family name -> model class, and ``build_model(config)``."""

from __future__ import annotations

from typing import Any

from torch import nn

from .config import BaseConfig, config_from_dict


def _classes() -> dict[str, type[nn.Module]]:
    from .baselines import TransformerBaseline, UniTF
    from .hrm import HRM
    from .hrm_lm import HRMLM
    from .trm import TRM

    return {"hrm": HRM, "trm": TRM, "unitf": UniTF, "transformer": TransformerBaseline, "hrm_lm": HRMLM}


def build_model(config: BaseConfig | dict[str, Any]) -> nn.Module:
    """Instantiate the model a config describes (a config object or its ``to_dict()``)."""
    cfg = config_from_dict(config) if isinstance(config, dict) else config
    cfg.validate()
    classes = _classes()
    if cfg.family not in classes:
        raise ValueError(f"model family {cfg.family!r} is not available")
    return classes[cfg.family](cfg)
