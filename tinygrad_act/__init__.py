"""Activation layers with explicit forward and backward, for networks built by hand in NumPy."""

from tinygrad_act import datasets, functional
from tinygrad_act._engine import engine, float32_safe, get_num_threads, set_num_threads
from tinygrad_act._memory import free_buffers
from tinygrad_act.activations import (
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    RReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softshrink,
    Softsign,
    Tanh,
    Tanhshrink,
    Threshold,
    get,
)
from tinygrad_act.base import Activation, Layer, Parameter, is_grad_enabled, no_grad
from tinygrad_act.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinygrad_act.layers import Linear, Sequential
from tinygrad_act.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinygrad_act.optim import SGD, Adam, AdamW

__all__ = [
    "CELU",
    "ELU",
    "GELU",
    "GLU",
    "SELU",
    "SGD",
    "Activation",
    "Adam",
    "AdamW",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "GradcheckError",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "Layer",
    "LeakyReLU",
    "Linear",
    "LogSigmoid",
    "LogSoftmax",
    "MSELoss",
    "Mish",
    "PReLU",
    "Parameter",
    "RReLU",
    "ReLU",
    "ReLU6",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softmin",
    "Softplus",
    "Softshrink",
    "Softsign",
    "Tanh",
    "Tanhshrink",
    "Threshold",
    "datasets",
    "engine",
    "float32_safe",
    "free_buffers",
    "functional",
    "get",
    "get_num_threads",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "no_grad",
    "set_num_threads",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``tinygrad_act.testing`` (it needs Hypothesis) and ``tinygrad_act.cli``, on first use."""
    if name in ("testing", "cli"):
        import importlib

        return importlib.import_module(f"tinygrad_act.{name}")
    raise AttributeError(f"module 'tinygrad_act' has no attribute {name!r}")
