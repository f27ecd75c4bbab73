"""Loss functions: ``loss = fn(prediction, target)`` is a Python float (the mean),
``fn.backward()`` the gradient dL/dprediction, in the prediction's dtype and shape."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_act import _array_api
from tinygrad_act._engine import Quietly
from tinygrad_act.activations import LogSoftmax, _logistic
from tinygrad_act.base import Array, as_float_array


class Loss:
    """Base of the losses: checks the inputs, remembers what backward needs."""

    def __init__(self) -> None:
        self._grad: Array | None = None

    #: Clip the gradient to the prediction dtype's finite range (BCELoss in float16).
    finite_gradient = False

    def __call__(self, prediction: npt.ArrayLike, target: npt.ArrayLike) -> float:
        name = type(self).__name__
        xp: Any = np
        if type(prediction) is not np.ndarray and _array_api.is_foreign(prediction):
            xp, p, p64 = _array_api.prepare(name, prediction)
            dtype = p.dtype
        else:
            p = as_float_array(prediction, name)
            p64 = p.astype(np.float64)
            dtype = p.dtype.newbyteorder("=")  # NOTE: the gradient is in native byte order
        t = self._target(p64, target)
        self.check(p64, t)
        # NOTE: inf and NaN give their IEEE results (inf, NaN) quietly, never a warning.
        with Quietly():
            value, grad = self.compute(p64, t)
            grad = grad / max(math.prod(p.shape), 1)  # mean reduction
            if self.finite_gradient:
                limit = float(xp.finfo(dtype).max)
                grad = xp.clip(grad, -limit, limit)
            self._grad = _array_api.astype(xp, grad, dtype)
        return float(value)

    def check(self, p: Array, t: Array) -> None:
        """Raise `ValueError` for inputs the loss has no meaning for (none by default)."""

    def _target(self, p: Array, target: npt.ArrayLike) -> Array:
        """`target` in `p`'s library and dtype (float64, unless its device has none)."""
        name = type(self).__name__
        if type(p) is not np.ndarray:
            target = _array_api.check_same(name, "target", p, target)
            space = _array_api.namespace(p, name)
            t = space.astype(space.float_input(target, name + " target"), p.dtype)
        else:
            _array_api.refuse_foreign(name, "target", target)
            t = as_float_array(target, f"{name} target").astype(np.float64)
        if tuple(t.shape) != tuple(p.shape):
            raise ValueError(
                f"{name}: prediction has shape {tuple(p.shape)}, target has shape "
                f"{tuple(t.shape)}; they must match"
            )
        return t  # type: ignore[no-any-return]

    def compute(self, p: Array, t: Array) -> tuple[float, Array]:
        """The mean loss, and the gradient of the *sum* over elements (float64), in the
        namespace of `p` (NumPy, or another array library's)."""
        raise NotImplementedError

    def backward(self) -> Array:
        """dL/dprediction of the last call."""
        if self._grad is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before the loss: call loss(prediction, "
                "target) first"
            )
        if type(self._grad) is not np.ndarray:
            return _array_api.copy(self._grad)  # type: ignore[no-any-return]
        return np.array(self._grad)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    r"""Mean squared error.

    .. math::
        L = \frac1N \sum_i (p_i - t_i)^2, \qquad
        \frac{\partial L}{\partial p_i} = \frac2N (p_i - t_i)

    >>> loss = MSELoss()
    >>> loss(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    2.0
    >>> loss.backward()
    array([ 0., -2.])
    """

    def compute(self, p: Array, t: Array) -> tuple[float, Array]:
        xp = _array_api.namespace_of(p)
        diff = p - t
        return float(xp.mean(diff * diff)) if math.prod(diff.shape) else 0.0, 2 * diff


class BCELoss(Loss):
    r"""Binary cross-entropy on probabilities.

    .. math::
        L = -\frac1N \sum_i \bigl(t_i \log p_i + (1 - t_i) \log(1 - p_i)\bigr), \qquad
        \frac{\partial L}{\partial p_i} = \frac1N \frac{p_i - t_i}{p_i (1 - p_i)}

    Predictions and targets must be in [0, 1]: anything else (NaN included) is a
    `ValueError` naming the first bad value. Probabilities are clipped to
    ``[eps, 1 - eps]`` (``eps = 1e-12``) first, so ``log(0)`` never happens and the
    gradient stays finite; a prediction of exactly 0 or 1 costs at most
    :math:`-\log(10^{-12}) \approx 27.6`. In float16 the gradient is clipped to
    float16's finite range. For outputs of a final linear layer,
    `BCEWithLogitsLoss` is exact and stable: prefer it.

    >>> BCELoss()(np.array([0.5, 0.5]), np.array([0.0, 1.0]))
    0.6931471805599453
    """

    eps = 1e-12
    finite_gradient = True

    def check(self, p: Array, t: Array) -> None:
        _check_unit_interval("BCELoss", "prediction", p, " (for logits use BCEWithLogitsLoss)")
        _check_unit_interval("BCELoss", "target", t)

    def compute(self, p: Array, t: Array) -> tuple[float, Array]:
        xp = _array_api.namespace_of(p)
        q = xp.clip(p, self.eps, 1 - self.eps)
        losses = -(t * xp.log(q) + (1 - t) * xp.log1p(-q))
        mean = float(xp.mean(losses)) if math.prod(q.shape) else 0.0
        return mean, (q - t) / (q * (1 - q))


class BCEWithLogitsLoss(Loss):
    r"""Binary cross-entropy on logits :math:`z`, with the sigmoid built in.

    .. math::
        L = \frac1N \sum_i \bigl(\max(z_i, 0) - z_i t_i + \log(1 + e^{-|z_i|})\bigr), \qquad
        \frac{\partial L}{\partial z_i} = \frac1N (\sigma(z_i) - t_i)

    Stable for logits of ±1000 (and ±inf), without warnings. Targets must be in
    [0, 1]; anything else is a `ValueError`.

    >>> BCEWithLogitsLoss()(np.array([1000.0, -1000.0]), np.array([1.0, 0.0]))
    0.0
    """

    def check(self, p: Array, t: Array) -> None:
        _check_unit_interval("BCEWithLogitsLoss", "target", t)

    def compute(self, p: Array, t: Array) -> tuple[float, Array]:
        xp = _array_api.namespace_of(p)
        z = xp.clip(p, -1e300, 1e300)  # NOTE: z * t would be inf - inf at z = +-inf
        e = xp.exp(-xp.abs(z))
        losses = xp.maximum(z, 0.0) - z * t + xp.log1p(e)
        s, s_complement = _logistic(z, xp, e)
        # NOTE: sigma(z) - t as sigma(z) (1 - t) - (1 - sigma(z)) t: no cancellation where
        # sigma(z) rounds near t = 1 (or 0); 1 - t is exact for t in [1/2, 1]
        return float(xp.mean(losses)) if math.prod(z.shape) else 0.0, s * (1 - t) - s_complement * t


class CrossEntropyLoss(Loss):
    r"""Cross-entropy of logits and integer class labels, with a stable log-softmax.

    .. math::
        L = -\frac1N \sum_n \log \operatorname{softmax}(z_n)_{y_n}, \qquad
        \frac{\partial L}{\partial z_n} = \frac1N (\operatorname{softmax}(z_n) - e_{y_n})

    Logits have shape ``(..., C)`` and labels the shape ``(...)``, integers in
    ``[0, C)``. N counts the labels.

    >>> CrossEntropyLoss()(np.array([[0.0, 0.0]]), np.array([1]))
    0.6931471805599453
    """

    def __call__(self, prediction: npt.ArrayLike, target: npt.ArrayLike) -> float:
        name = "CrossEntropyLoss"
        xp: Any = np
        if type(prediction) is not np.ndarray and _array_api.is_foreign(prediction):
            xp, logits, wide = _array_api.prepare(name, prediction)
            labels = _array_api.check_same(name, "target", logits, target)
            integral = xp.isdtype(labels.dtype, "integral")
            dtype = logits.dtype
            classes_range = xp.arange(logits.shape[-1], device=xp.device)
        else:
            logits = as_float_array(prediction, name)
            _array_api.refuse_foreign(name, "target", target)
            labels = np.asarray(target)
            integral = labels.dtype.kind in "iu"
            wide, dtype = logits.astype(np.float64), logits.dtype.newbyteorder("=")
            classes_range = np.arange(logits.shape[-1]) if logits.ndim else np.arange(0)
        shape, label_shape = tuple(logits.shape), tuple(labels.shape)
        if logits.ndim == 0 or label_shape != shape[:-1]:
            expected = shape[:-1] if logits.ndim else "(...) for logits (..., C)"
            raise ValueError(
                f"{name}: logits have shape {shape}, labels have shape "
                f"{label_shape}; expected labels of shape {expected}"
            )
        classes = shape[-1]
        if not integral:
            raise ValueError(
                f"{name}: labels must be integers in [0, {classes}), got dtype {labels.dtype}"
            )
        count = math.prod(label_shape)
        if count:
            low, high = int(xp.min(labels)), int(xp.max(labels))
            if low < 0 or high >= classes:
                raise ValueError(
                    f"{name}: labels must be in [0, {classes}) for logits of shape "
                    f"{shape}, got values from {low} to {high}"
                )
        log_p = LogSoftmax().forward(wide)
        n = max(count, 1)
        is_label = labels[..., None] == classes_range
        with np.errstate(all="ignore"):  # NOTE: inf and NaN logits give NaN quietly
            # softmax, minus 1 at each label. NOTE: p - 1 as expm1(log p): exp(log p) - 1
            # cancels where p is near 1
            grad = xp.where(is_label, xp.expm1(log_p), xp.exp(log_p))
            self._grad = _array_api.astype(xp, grad / n, dtype)
            # each row's sum has one term: exact, so the total sums the labels' log p alone
            at_label = xp.sum(xp.where(is_label, log_p, 0.0), axis=-1)
            return float(-xp.sum(at_label) / n)


def _check_unit_interval(owner: str, what: str, values: Array, hint: str = "") -> None:
    """Raise `ValueError` naming the first value outside [0, 1] (NaN included)."""
    if type(values) is np.ndarray and (
        not values.size or (values.min() >= 0 and values.max() <= 1)
    ):  # NOTE: two reductions, fewer calls than the mask below; NaN fails both tests
        return
    bad = ~((values >= 0) & (values <= 1))
    xp = _array_api.namespace_of(values)
    if bool(xp.any(bad)):
        if type(values) is not np.ndarray:  # the message only: NumPy copies
            values, bad = _array_api.to_numpy(values), _array_api.to_numpy(bad)
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{owner}: {what} must be in [0, 1], got {float(values[index])} at index {index}{hint}"
        )
