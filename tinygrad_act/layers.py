"""Layers with parameters, to compose activations into networks: `Linear`, `Sequential`."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from tinygrad_act import _array_api
from tinygrad_act._engine import Quietly
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
    Parameters are float64. Input of any dtype (and byte order) is computed in
    float64 and the result rounded once to the input's dtype, in native byte order.
    forward caches the input (in float64); backward returns dL/dx and *adds* dL/dW
    and dL/db to the parameters' ``.grad`` (they accumulate until ``zero_grad()``,
    as in PyTorch).

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
        for name, size in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(size, bool) or not isinstance(size, numbers.Integral):
                raise TypeError(f"Linear: {name} must be an int, got {size!r}")
            if size < 1:
                raise ValueError(f"Linear: {name} must be positive, got {size}")
        in_features, out_features = int(in_features), int(out_features)
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

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return (self.in_features,)

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        named = [("weight", self.weight)]
        return named if self.bias is None else [*named, ("bias", self.bias)]

    def forward(self, x: npt.ArrayLike) -> Array:
        xp: Any = np
        self._forget()  # first: a forward that fails leaves no cache
        if type(x) is not np.ndarray and _array_api.is_foreign(x):
            xp, x, wide = _array_api.prepare("Linear", x)  # wide: our own copy
            dtype = x.dtype
        else:
            x = as_float_array(x, "Linear")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: input of shape {tuple(x.shape)} does not end in in_features = "
                f"{self.in_features}; expected (..., {self.in_features})"
            )
        # NOTE: computed in float64 and rounded once to the input's dtype: a float32 or
        # float16 network then loses only its own roundings, not a float32 matmul's. The
        # output is in native byte order (a big-endian input gives the native result).
        if xp is np:
            # our own copy, C-ordered: a Fortran-ordered input gives the same sums
            wide, dtype = x.astype(np.float64, order="C"), x.dtype.newbyteorder("=")
        if xp is not np or type(self.weight.data) is not np.ndarray:
            _array_api.follow(self.parameters(), wide)  # parameters live where the input does
        # NOTE: inf - inf is NaN and a result beyond float16 is inf, without a warning
        with Quietly():
            y = wide @ self.weight.data
            if self.bias is not None:
                y = y + self.bias.data if xp is not np else np.add(y, self.bias.data, out=y)
            y = y.astype(dtype, copy=False) if xp is np else xp.astype(y, dtype)
        self._remember(wide, dtype)
        return y

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        x, dtype = self._recall()
        shape = (*x.shape[:-1], self.out_features)
        xp: Any = np
        if type(x) is not np.ndarray:  # forward ran on another library's array
            xp = _array_api.namespace(x, "Linear.backward")
            grad = _array_api.check_same("Linear.backward", "grad_output", x, grad_output)
            _array_api.check_shape("Linear.backward", "grad_output", grad, shape)
            g = xp.astype(xp.float_input(grad, "Linear.backward"), x.dtype)
        else:
            g = check_grad_output(self, grad_output, shape).astype(np.float64, order="C")
        # NOTE: NumPy's methods, not its functions: a microsecond less per call
        if xp is np:
            flat_x, flat_g = x.reshape(-1, self.in_features), g.reshape(-1, self.out_features)
        else:
            flat_x = xp.reshape(x, (-1, self.in_features))
            flat_g = xp.reshape(g, (-1, self.out_features))
        weight, bias = self.weight, self.bias
        with Quietly():  # as in forward
            _array_api.accumulate(weight, flat_x.T @ flat_g)
            if bias is not None:
                total = flat_g.sum(axis=0) if xp is np else xp.sum(flat_g, axis=0)
                _array_api.accumulate(bias, total)
            grad_input = g @ weight.data.T
            if xp is np:
                return grad_input.astype(dtype, copy=False)  # type: ignore[no-any-return]
            return xp.astype(grad_input, dtype)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return (
            f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None})"
        )


class Sequential(Layer):
    """Layers applied in order; backward runs through them in reverse.

    Supports ``len``, indexing, slicing (a slice is a `Sequential` of the same
    layer objects, as in PyTorch), iteration and `append`; ``parameters()``,
    ``zero_grad()``, ``state_dict()`` and ``load_state_dict()`` cover every layer,
    with names such as ``"0.weight"``.

    Each place in the network needs its own layer object: a layer keeps the cache
    of its last forward, so one instance at two places (``act = Tanh()`` used
    twice, or one `Linear` meant as tied weights) would give the wrong gradient
    for the first. That is a `ValueError` when the `Sequential` is built (or on
    `append`) naming the layer and its positions, nested `Sequential` included.
    Write ``Tanh()`` at each place instead.

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
    >>> model[:2]
    Sequential(
      (0): Linear(in_features=2, out_features=3, bias=True)
      (1): Tanh()
    )
    """

    def __init__(self, *layers: Layer) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {type(layer).__name__}, not a Layer")
        _check_distinct(self, layers)
        self.layers = list(layers)

    def train(self, mode: bool = True) -> Sequential:
        """Every layer in training mode, or in inference with ``mode=False``; returns self."""
        for layer in self.layers:
            layer.train(mode)
        return self

    def __copy__(self) -> Sequential:
        """Shallow copies of the layers: the parameters are shared, the caches are not."""
        copied = type(self).__new__(type(self))
        copied.__dict__.update(self.__dict__)
        copied.layers = [copy.copy(layer) for layer in self.layers]
        return copied

    def append(self, layer: Layer) -> Sequential:
        """Add `layer` at the end; returns this `Sequential`, as in PyTorch."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.append: got {type(layer).__name__}, not a Layer")
        _check_distinct(self, [*self.layers, layer])
        self.layers.append(layer)
        return self

    @property
    def input_shape(self) -> tuple[int | None, ...] | None:
        return self.layers[0].input_shape if self.layers else None

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [
            (f"{i}.{name}", p)
            for i, layer in enumerate(self.layers)
            for name, p in layer.named_parameters()
        ]

    def _forget(self) -> None:
        for layer in self.layers:
            layer._forget()

    def forward(self, x: npt.ArrayLike) -> Array:
        done = 0
        try:
            foreign = type(x) is not np.ndarray and _array_api.is_foreign(x)
            convert = _array_api.float_array if foreign else as_float_array
            y = convert(x, "Sequential")
            for layer in self.layers:
                y = layer.forward(y)
                done += 1
        except BaseException:
            # the layers after the one that failed forget their last forward too, so that
            # backward raises before any adds to a gradient from that earlier forward
            for layer in self.layers[done:]:
                layer._forget()
            raise
        if self.layers:
            return y
        return _array_api.copy(y) if foreign else y.copy()  # type: ignore[no-any-return]

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        foreign = type(grad_output) is not np.ndarray and _array_api.is_foreign(grad_output)
        if foreign:
            grad = _array_api.float_array(grad_output, "Sequential.backward")
        else:
            grad = as_float_array(grad_output, "Sequential.backward")
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def __len__(self) -> int:
        return len(self.layers)

    @overload
    def __getitem__(self, index: int) -> Layer: ...

    @overload
    def __getitem__(self, index: slice) -> Sequential: ...

    def __getitem__(self, index: int | slice) -> Layer | Sequential:
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        lines = [f"  ({i}): {layer!r}".replace("\n", "\n  ") for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)" if lines else "Sequential()"


def _check_distinct(root: Sequential, layers: Sequence[Layer]) -> None:
    """Raise `ValueError` if one layer object is at two places of the tree under `root`."""
    places: dict[int, list[str]] = {}
    found: dict[int, Layer] = {}

    def visit(children: Sequence[Layer], prefix: str) -> None:
        for i, layer in enumerate(children):
            if layer is root:
                raise ValueError(f"Sequential: cannot contain itself (at position {prefix}{i})")
            seen = id(layer) in places
            places.setdefault(id(layer), []).append(f"{prefix}{i}")
            found[id(layer)] = layer
            if isinstance(layer, Sequential) and not seen:
                visit(layer.layers, f"{prefix}{i}.")

    visit(layers, "")
    for key, where in places.items():
        if len(where) > 1:
            layer = found[key]
            name = type(layer).__name__ if isinstance(layer, Sequential) else repr(layer)
            raise ValueError(
                f"Sequential: the same {name} instance is at positions "
                f"{', '.join(where[:-1])} and {where[-1]}; a layer keeps the cache of its last "
                f"forward, so each place needs its own instance: use separate instances"
            )
