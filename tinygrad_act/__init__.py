"""Activation layers with explicit forward and backward, for networks built by hand in NumPy."""

from tinygrad_act.activations import Sigmoid
from tinygrad_act.base import Activation, Layer
from tinygrad_act.gradcheck import GradcheckError, gradcheck

__all__ = ["Activation", "GradcheckError", "Layer", "Sigmoid", "gradcheck"]
__version__ = "0.1.0"
