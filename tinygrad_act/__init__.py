"""Activation layers with explicit forward and backward, for networks built by hand in NumPy."""

from tinygrad_act.activations import (
    ELU,
    GELU,
    SELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    get,
)
from tinygrad_act.base import Activation, Layer
from tinygrad_act.gradcheck import GradcheckError, gradcheck

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "Activation",
    "GradcheckError",
    "Layer",
    "LeakyReLU",
    "LogSoftmax",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "get",
    "gradcheck",
]
__version__ = "0.1.0"
