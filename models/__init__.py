"""Hook-instrumented recursive reasoning models: HRM, TRM, HRM-LM and baselines."""

from .config import (
    BaseConfig,
    ConfigError,
    HRMConfig,
    HRMLMConfig,
    PuzzleConfig,
    TRMConfig,
    TransformerConfig,
    UniTFConfig,
    config_from_dict,
)
from .hooks import HookedModel, HookPoint
from .registry import build_model

__all__ = [
    "BaseConfig", "ConfigError", "HRMConfig", "HRMLMConfig", "PuzzleConfig", "TRMConfig",
    "TransformerConfig", "UniTFConfig", "config_from_dict", "HookedModel", "HookPoint", "build_model",
]
