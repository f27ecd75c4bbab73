"""Loss functions: ``loss = fn(prediction, target)`` is a Python float (the mean),
``fn.backward()`` the gradient dL/dprediction, in the prediction's dtype and shape."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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
        p = as_float_array(prediction, name)
        t = self._target(p, target)
        p64 = p.astype(np.float64)
        self.check(p64, t)
        dtype = p.dtype.newbyteorder("=")  # NOTE: the gradient is in native byte order
        # NOTE: inf and NaN give their IEEE results (inf, NaN) quietly, never a warning.
        with np.errstate(all="ignore"):
            value, grad = self.compute(p64, t)
            grad = grad / max(p.size, 1)  # mean reduction
            if self.finite_gradient:
                limit = float(np.finfo(dtype).max)
                grad = np.clip(grad, -limit, limit)
            self._grad = grad.astype(dtype)
        return float(value)

    def check(self, p: Array, t: Array) -> None:
        """Raise `ValueError` for inputs the loss has no meaning for (none by default)."""

    def _target(self, p: Array, target: npt.ArrayLike) -> Array:
        t = as_float_array(target, f"{type(self).__name__} target").astype(np.float64)
        if t.shape != p.shape:
            raise ValueError(
                f"{type(self).__name__}: prediction has shape {p.shape}, target has shape "
                f"{t.shape}; they must match"
            )
        return t

    def compute(self, p: Array, t: Array) -> tuple[float, Array]:
        """The mean loss, and the gradient of the *sum* over elements (float64)."""
        raise NotImplementedError

    def backward(self) -> Array:
        """dL/dprediction of the last call."""
        if self._grad is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before the loss: call loss(prediction, "
                "target) first"
            )
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
        diff = p - t
        return float(np.mean(diff * diff)) if diff.size else 0.0, 2 * diff


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
        q = np.clip(p, self.eps, 1 - self.eps)
        losses = -(t * np.log(q) + (1 - t) * np.log1p(-q))
        return float(np.mean(losses)) if q.size else 0.0, (q - t) / (q * (1 - q))


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
        z = np.clip(p, -1e300, 1e300)  # NOTE: z * t would be inf - inf at z = +-inf
        losses = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        s, _ = _logistic(z)
        return float(np.mean(losses)) if z.size else 0.0, s - t


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
        logits = as_float_array(prediction, "CrossEntropyLoss")
        labels = np.asarray(target)
        if logits.ndim == 0 or labels.shape != logits.shape[:-1]:
            expected = logits.shape[:-1] if logits.ndim else "(...) for logits (..., C)"
            raise ValueError(
                f"CrossEntropyLoss: logits have shape {logits.shape}, labels have shape "
                f"{labels.shape}; expected labels of shape {expected}"
            )
        classes = logits.shape[-1]
        if labels.dtype.kind not in "iu":
            raise ValueError(
                f"CrossEntropyLoss: labels must be integers in [0, {classes}), "
                f"got dtype {labels.dtype}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(
                f"CrossEntropyLoss: labels must be in [0, {classes}) for logits of shape "
                f"{logits.shape}, got values from {labels.min()} to {labels.max()}"
            )
        index = labels[..., None].astype(np.intp)
        log_p = LogSoftmax().forward(logits.astype(np.float64))
        n = max(labels.size, 1)
        with np.errstate(all="ignore"):  # NOTE: inf and NaN logits give NaN quietly
            grad = np.exp(log_p)  # softmax, minus 1 at each label
            # NOTE: p - 1 as expm1(log p): exp(log p) - 1 cancels where p is near 1
            at_label = np.expm1(np.take_along_axis(log_p, index, axis=-1))
            np.put_along_axis(grad, index, at_label, axis=-1)
            self._grad = (grad / n).astype(logits.dtype.newbyteorder("="))
            return float(-np.take_along_axis(log_p, index, axis=-1).sum() / n)


def _check_unit_interval(owner: str, what: str, values: Array, hint: str = "") -> None:
    """Raise `ValueError` naming the first value outside [0, 1] (NaN included)."""
    bad = ~((values >= 0) & (values <= 1))
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{owner}: {what} must be in [0, 1], got {float(values[index])} at index {index}{hint}"
        )
