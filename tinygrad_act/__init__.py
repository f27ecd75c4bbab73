"""Activation layers with explicit forward and backward, for networks built by hand in NumPy."""

from tinygrad_act import datasets
from tinygrad_act._engine import engine, get_num_threads, set_num_threads
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
from tinygrad_act.base import Activation, Layer, Parameter, is_grad_enabled, no_grad
from tinygrad_act.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinygrad_act.layers import Linear, Sequential
from tinygrad_act.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinygrad_act.optim import SGD, Adam, AdamW

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "SGD",
    "Activation",
    "Adam",
    "AdamW",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "GradcheckError",
    "Layer",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "datasets",
    "engine",
    "get",
    "get_num_threads",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "no_grad",
    "set_num_threads",
]
__version__ = "0.1.0"
