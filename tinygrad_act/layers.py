"""Layers with parameters, to compose activations into networks: `Linear`, `Sequential`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_act.base import Array, Layer, Parameter, as_float_array, check_grad_output


class Linear(Layer):
    r"""An affine map :math:`y = x W + b`.

    .. math::
        y = x W + b, \qquad
        \frac{\partial L}{\partial x} = g W^\top, \quad
        \frac{\partial L}{\partial W} = x^\top g, \quad
        \frac{\partial L}{\partial b} = \textstyle\sum_{\text{batch}} g

    Shape: input ``(*, in_features)``, output ``(*, out_features)``; ``weight`` is
    ``(in_features, out_features)``, so a batch of row vectors multiplies from the left.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of each input and output vector.
    bias : bool
        Whether to add a learnable bias (default True).
    init : {"xavier", "he"}
        Weight initialisation: "xavier" (Glorot uniform, for tanh and sigmoid) draws
        from :math:`U(-a, a)`, :math:`a = \sqrt{6 / (\text{in} + \text{out})}`; "he"
        (for ReLU) from :math:`N(0, 2 / \text{in})`. The bias starts at 0.
    rng : numpy.random.Generator or int, optional
        Random source or seed, for reproducible initialisation.

    Notes
    -----
    Parameters are float64. float16 and float32 input is computed with the weights
    rounded to float32 and returned in its own dtype. forward caches the input;
    backward returns dL/dx and *adds* dL/dW and dL/db to the parameters' ``.grad``
    (they accumulate until ``zero_grad()``, as in PyTorch).

    Examples
    --------
    >>> layer = Linear(2, 1, rng=0)
    >>> layer.weight.data[...] = [[1.0], [2.0]]
    >>> layer(np.array([[3.0, 4.0]]))
    array([[11.]])
    >>> layer.backward(np.array([[1.0]]))
    array([[1., 2.]])
    >>> layer.weight.grad
    array([[3.],
           [4.]])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        init: Literal["xavier", "he"] = "xavier",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear: in_features and out_features must be positive, "
                f"got {in_features} and {out_features}"
            )
        generator = np.random.default_rng(rng)
        shape = (in_features, out_features)
        if init == "xavier":
            limit = np.sqrt(6.0 / (in_features + out_features))
            weight = generator.uniform(-limit, limit, shape)
        elif init == "he":
            weight = generator.normal(0.0, np.sqrt(2.0 / in_features), shape)
        else:
            raise ValueError(f"Linear: init must be 'xavier' or 'he', got {init!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(weight)
        self.bias = Parameter(np.zeros(out_features)) if bias else None
        self._x: Array | None = None
        self._dtype: np.dtype[Any] = np.dtype(np.float64)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return (self.in_features,)

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        named = [("weight", self.weight)]
        return named if self.bias is None else [*named, ("bias", self.bias)]

    def forward(self, x: npt.ArrayLike) -> Array:
        x = as_float_array(x, "Linear")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: input of shape {x.shape} does not end in in_features = "
                f"{self.in_features}; expected (..., {self.in_features})"
            )
        compute = np.float64 if x.dtype == np.float64 else np.float32
        self._x, self._dtype = x.astype(compute), x.dtype  # a copy: the cache is our own
        with np.errstate(invalid="ignore", over="ignore"):  # NOTE: inf - inf is NaN, no warning
            y = self._x @ self.weight.data.astype(compute, copy=False)
            if self.bias is not None:
                y += self.bias.data.astype(compute, copy=False)
            return y.astype(x.dtype, copy=False)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        x = self._x
        output_shape = None if x is None else (*x.shape[:-1], self.out_features)
        grad = check_grad_output(self, grad_output, output_shape)
        assert x is not None
        g = grad.astype(x.dtype, copy=False)
        flat_x, flat_g = x.reshape(-1, self.in_features), g.reshape(-1, self.out_features)
        with np.errstate(invalid="ignore", over="ignore"):
            self.weight.grad += flat_x.T.astype(np.float64) @ flat_g.astype(np.float64)
            if self.bias is not None:
                self.bias.grad += flat_g.sum(axis=0, dtype=np.float64)
            grad_input: Array = g @ self.weight.data.T.astype(x.dtype, copy=False)
            return grad_input.astype(self._dtype, copy=False)

    def __repr__(self) -> str:
        return (
            f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None})"
        )


class Sequential(Layer):
    """Layers applied in order; backward runs through them in reverse.

    Supports ``len``, indexing and iteration; ``parameters()``, ``zero_grad()``,
    ``state_dict()`` and ``load_state_dict()`` cover every layer, with names such
    as ``"0.weight"``.

    Examples
    --------
    >>> from tinygrad_act import Tanh
    >>> model = Sequential(Linear(2, 3, rng=0), Tanh(), Linear(3, 1, rng=1))
    >>> model
    Sequential(
      (0): Linear(in_features=2, out_features=3, bias=True)
      (1): Tanh()
      (2): Linear(in_features=3, out_features=1, bias=True)
    )
    >>> model(np.zeros((4, 2))).shape
    (4, 1)
    >>> sorted(model.state_dict())
    ['0.bias', '0.weight', '2.bias', '2.weight']
    """

    def __init__(self, *layers: Layer) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {type(layer).__name__}, not a Layer")
        self.layers = list(layers)

    @property
    def input_shape(self) -> tuple[int | None, ...] | None:
        return self.layers[0].input_shape if self.layers else None

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [
            (f"{i}.{name}", p)
            for i, layer in enumerate(self.layers)
            for name, p in layer.named_parameters()
        ]

    def forward(self, x: npt.ArrayLike) -> Array:
        y = as_float_array(x, "Sequential")
        for layer in self.layers:
            y = layer.forward(y)
        return y if self.layers else y.copy()

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        grad = as_float_array(grad_output, "Sequential.backward")
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        lines = [f"  ({i}): {layer!r}".replace("\n", "\n  ") for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)" if lines else "Sequential()"
