"""Optimizers: update parameters from their gradients, ``step()`` after each backward.

`SGD`, `Adam` and `AdamW` follow PyTorch's update rules and parameter names.
Every optimizer has ``state_dict()`` and ``load_state_dict()``, so that a
training run resumes exactly: save the model's and the optimizer's state,
load both later, and the following steps are bit for bit those of the
uninterrupted run.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from tinygrad_act import _array_api
from tinygrad_act.base import Array, Parameter


def _real(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    return float(value)


def _check_positive(owner: str, name: str, value: object) -> float:
    number = _real(owner, name, value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{owner}: {name} must be finite and positive, got {value!r}")
    return number


def _check_non_negative(owner: str, name: str, value: object) -> float:
    number = _real(owner, name, value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{owner}: {name} must be finite and >= 0, got {value!r}")
    return number


def _check_unit(owner: str, name: str, value: object) -> float:
    number = _real(owner, name, value)
    if not 0 <= number < 1:
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {value!r}")
    return number


class Optimizer:
    """Base of the optimizers: holds the parameters, zeroes their gradients, saves state.

    A subclass lists its settings in `hyperparameters` and its per-parameter
    arrays in `buffers` (PyTorch's names), creates them in ``__init__`` and
    implements `step`.

    Parameters on another array library (see `Linear`) are updated in their own
    namespace, by new arrays rather than in place; each buffer follows its
    parameter's library and device at the next `step`.

    NumPy parameters are updated in place. Their buffers are views into one flat
    array per buffer, so that a step runs the update rule once over all the
    parameters, with the bits of the same rule run parameter by parameter. A step
    runs parameter by parameter where a parameter's data or grad is no longer
    NumPy float64 of its first shape, or a buffer entry has been replaced.
    """

    #: Names of the settings saved by `state_dict`, besides ``lr``.
    hyperparameters: ClassVar[tuple[str, ...]] = ()
    #: Names of the per-parameter arrays, attributes holding one array per parameter.
    buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        name = type(self).__name__
        if isinstance(params, Parameter) or not isinstance(params, Iterable):
            raise TypeError(
                f"{name}: params must be a list of Parameter, such as model.parameters(), "
                f"got {type(params).__name__}"
            )
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{name}: got an empty list of parameters")
        seen: set[int] = set()
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: params[{i}] is {type(p).__name__}, not a Parameter")
            if id(p) in seen:
                raise ValueError(f"{name}: params[{i}] appears twice in the list of parameters")
            seen.add(id(p))
        self.lr = _check_positive(name, "lr", lr)
        self.step_count = 0  # steps taken, saved as "step"

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (gradients accumulate otherwise)."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Update every parameter from its ``.grad``."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Array]:
        """A copy of the optimizer's state by name: ``np.savez(path, **opt.state_dict())``.

        ``"step"``, ``"lr"`` and the other settings, and one entry per parameter
        and buffer, such as ``"exp_avg.0"`` for Adam's first moment of
        ``params[0]``. The parameters themselves are the model's: save them with
        ``model.state_dict()``.
        """
        state: dict[str, Array] = {
            "step": np.array(self.step_count),
            "lr": np.array(self.lr),
        }
        for name in self.hyperparameters:
            state[name] = np.array(getattr(self, name), dtype=np.float64)
        for name in self.buffers:
            for i, buffer in enumerate(getattr(self, name)):
                state[f"{name}.{i}"] = _array_api.to_numpy(buffer)
        return state

    def load_state_dict(self, state: Mapping[str, npt.ArrayLike]) -> None:
        """Load a state saved by `state_dict`, bit for bit, settings included.

        Every entry is checked before anything is written: a missing or
        unexpected key, a shape that does not match, a non-numeric value, or a
        setting that the constructor would refuse is a `ValueError` naming the
        entry, and the optimizer is then left unchanged.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        expected: dict[str, tuple[int, ...]] = {"step": (), "lr": ()}
        for name in self.hyperparameters:
            expected[name] = np.shape(getattr(self, name))
        for name in self.buffers:
            for i, buffer in enumerate(getattr(self, name)):
                expected[f"{name}.{i}"] = tuple(buffer.shape)
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{owner}: missing keys {missing}, unexpected keys {unexpected}")
        arrays: dict[str, Array] = {}
        for key, shape in expected.items():
            value = np.asarray(state[key])
            if value.dtype.kind not in "iuf" or (value.dtype.kind == "f" and value.itemsize > 8):
                raise ValueError(f"{owner}: {key!r} has dtype {value.dtype}, expected numbers")
            if value.shape != shape:
                raise ValueError(
                    f"{owner}: {key!r} has shape {value.shape}, expected shape {shape}"
                )
            arrays[key] = value
        step = arrays["step"]
        if step.dtype.kind not in "iu" or step < 0:
            raise ValueError(f"{owner}: 'step' must be an integer >= 0, got {step!r}")
        settings = {name: arrays[name].tolist() for name in ("lr", *self.hyperparameters)}
        try:
            self._check_settings(settings)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{owner}: {error}") from None
        self.step_count = int(step)
        for name, value in settings.items():
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        for name in self.buffers:
            buffers = getattr(self, name)
            for i, buffer in enumerate(buffers):
                value = _array_api.like(arrays[f"{name}.{i}"], buffer)
                buffers[i] = _array_api.update(buffer, value)

    def _check_settings(self, settings: dict[str, Any]) -> None:
        """Raise as the constructor would for these settings (``lr`` and the rest)."""
        _check_positive(type(self).__name__, "lr", settings["lr"])

    def __repr__(self) -> str:
        settings = [f"{name}={getattr(self, name)!r}" for name in ("lr", *self.hyperparameters)]
        return f"{type(self).__name__}({', '.join(settings)})"


class SGD(Optimizer):
    r"""Stochastic gradient descent, with momentum, Nesterov momentum and L2 weight decay.

    PyTorch's form (without dampening), with :math:`g` the gradient:

    .. math::
        g \leftarrow g + \lambda \theta, \qquad
        v \leftarrow \mu v + g, \qquad
        \theta \leftarrow \theta - \eta\, (g + \mu v \text{ if nesterov else } v)

    Parameters
    ----------
    params : list of Parameter
        What to train, usually ``model.parameters()``.
    lr : float
        Learning rate :math:`\eta`, finite and positive.
    momentum : float
        :math:`\mu` in [0, 1) (default 0: plain gradient descent).
    weight_decay : float
        L2 penalty :math:`\lambda \ge 0` added to the gradient (default 0).
    nesterov : bool
        Nesterov momentum (default False); needs ``momentum > 0``.

    Examples
    --------
    >>> p = Parameter([1.0]); p.grad[...] = 2.0
    >>> SGD([p], lr=0.1).step(); p.data
    array([0.8])
    """

    hyperparameters = ("momentum", "weight_decay")
    buffers = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, lr)
        self._check_settings({"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0, got momentum=0")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.nesterov = nesterov
        self._flat = _FlatBuffers.of(self.params, count=1)
        self.momentum_buffer: list[Array] = _buffer(self._flat, 0, self.params)

    def _check_settings(self, settings: dict[str, Any]) -> None:
        super()._check_settings(settings)
        _check_unit("SGD", "momentum", settings["momentum"])
        _check_non_negative("SGD", "weight_decay", settings["weight_decay"])

    def step(self) -> None:
        self.step_count += 1
        flat = self._flat
        if (
            self.momentum  # NOTE: without momentum, a flat step saves nothing
            and flat is not None
            and flat.holds(self.params, (self.momentum_buffer,), decay=bool(self.weight_decay))
        ):
            grads = [_l2(p, self.weight_decay) for p in self.params]
            (v,) = flat.buffers
            direction = self._numpy_velocity(v, flat.gradient(grads))
            np.multiply(self.lr, direction, out=flat.update)
            flat.subtract(self.params)
            return
        buffers = self.momentum_buffer
        for i, p in enumerate(self.params):
            v = buffers[i] = _array_api.like(buffers[i], p.data)
            g = _l2(p, self.weight_decay)
            # NOTE: NumPy arrays are updated in place, without temporaries of their size;
            # other libraries' are replaced by new arrays (JAX's are immutable)
            if type(p.data) is np.ndarray:
                if self.momentum:
                    g = self._numpy_velocity(v, g)
                p.data -= self.lr * g
            else:
                if self.momentum:
                    v = buffers[i] = v * self.momentum + g
                    g = g + self.momentum * v if self.nesterov else v
                p.data = p.data - self.lr * g

    def _numpy_velocity(self, v: Array, g: Array) -> Array:
        """Update the NumPy velocity `v` in place from `g`; the direction to step in."""
        v *= self.momentum
        v += g
        return g + self.momentum * v if self.nesterov else v


class Adam(Optimizer):
    r"""Adam (Kingma and Ba, 2015), with bias correction and optional L2 weight decay.

    PyTorch's form, at step :math:`t` with gradient :math:`g`:

    .. math::
        g \leftarrow g + \lambda \theta, \quad
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        \theta \leftarrow \theta
            - \eta \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}

    Parameters
    ----------
    params : list of Parameter
        What to train, usually ``model.parameters()``.
    lr : float
        Learning rate :math:`\eta`, finite and positive (default 1e-3).
    betas : (float, float)
        Decay rates :math:`(\beta_1, \beta_2)` of the moment averages, each in [0, 1).
    eps : float
        :math:`\epsilon`, finite and positive: keeps the step finite where :math:`v = 0`.
    weight_decay : float
        L2 penalty :math:`\lambda \ge 0` added to the gradient (default 0). It is
        scaled by Adam's step size like the gradient; `AdamW` decays the weights
        directly instead, which is usually what one wants.

    Examples
    --------
    The first step moves each parameter by about ``lr``, against its gradient:

    >>> p = Parameter([1.0, 1.0]); p.grad[...] = [4.0, -0.5]
    >>> Adam([p], lr=0.1).step(); p.data
    array([0.9, 1.1])
    """

    hyperparameters = ("betas", "eps", "weight_decay")
    buffers = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self._check_settings({"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self._flat = _FlatBuffers.of(self.params, count=2)
        self.exp_avg: list[Array] = _buffer(self._flat, 0, self.params)
        self.exp_avg_sq: list[Array] = _buffer(self._flat, 1, self.params)

    def _check_settings(self, settings: dict[str, Any]) -> None:
        super()._check_settings(settings)
        name = type(self).__name__
        betas = settings["betas"]
        if not (isinstance(betas, tuple | list) and len(betas) == 2):
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            _check_unit(name, f"betas[{i}]", beta)
        _check_positive(name, "eps", settings["eps"])
        _check_non_negative(name, "weight_decay", settings["weight_decay"])

    def step(self) -> None:
        self.step_count += 1
        beta1, beta2 = self.betas
        correction1 = 1 - beta1**self.step_count
        correction2 = 1 - beta2**self.step_count
        flat = self._flat
        if flat is not None and flat.holds(
            self.params, (self.exp_avg, self.exp_avg_sq), decay=bool(self.weight_decay)
        ):
            g = flat.gradient([self._decay(p) for p in self.params])
            m, v = flat.buffers
            self._numpy_step(m, v, g, correction1, correction2, out=flat.update)
            flat.subtract(self.params)
            return
        for i, p in enumerate(self.params):
            m = self.exp_avg[i] = _array_api.like(self.exp_avg[i], p.data)
            v = self.exp_avg_sq[i] = _array_api.like(self.exp_avg_sq[i], p.data)
            g = self._decay(p)
            if type(p.data) is np.ndarray:  # NOTE: in place, as in SGD
                p.data -= self._numpy_step(m, v, g, correction1, correction2)
            else:
                xp = _array_api.namespace_of(p.data)
                m = self.exp_avg[i] = m * beta1 + (1 - beta1) * g
                v = self.exp_avg_sq[i] = v * beta2 + (1 - beta2) * g * g
                p.data = p.data - self.lr * (m / correction1) / (
                    xp.sqrt(v / correction2) + self.eps
                )

    def _numpy_step(
        self,
        m: Array,
        v: Array,
        g: Array,
        correction1: float,
        correction2: float,
        out: Array | None = None,
    ) -> Array:
        """Update NumPy moments `m` and `v` in place from `g`; the step to subtract."""
        beta1, beta2 = self.betas
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        return np.divide(  # type: ignore[no-any-return]
            self.lr * (m / correction1), np.sqrt(v / correction2) + self.eps, out=out
        )

    def _decay(self, p: Parameter) -> Array:
        """The gradient Adam averages: with the L2 term added."""
        return _l2(p, self.weight_decay)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as PyTorch's ``AdamW``.

    Each step first shrinks the parameters, :math:`\theta \leftarrow \theta - \eta
    \lambda \theta`, then takes the `Adam` step on the gradient alone. The
    parameters are those of `Adam`; ``weight_decay`` defaults to 0.01, as in PyTorch.

    Examples
    --------
    With a zero gradient only the decay acts: :math:`1 - 0.1 \cdot 0.5 = 0.95`.

    >>> p = Parameter([1.0])
    >>> AdamW([p], lr=0.1, weight_decay=0.5).step(); p.data
    array([0.95])
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)

    def _decay(self, p: Parameter) -> Array:
        if self.weight_decay and type(p.data) is np.ndarray:
            p.data *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            p.data = p.data * (1 - self.lr * self.weight_decay)
        return p.grad


def _zeros_like(a: Array) -> Array:
    """Zeros of `a`'s shape, dtype, library and device."""
    return _array_api.namespace_of(a).zeros_like(a)  # type: ignore[no-any-return]


def _buffer(flat: _FlatBuffers | None, index: int, params: list[Parameter]) -> list[Array]:
    """A new buffer: the views of ``flat.buffers[index]``, or zeros like each parameter."""
    if flat is None:
        return [_zeros_like(p.data) for p in params]
    return list(flat.views[index])  # a list of its own: a user may replace an entry


def _l2(p: Parameter, weight_decay: float) -> Array:
    """The gradient with the L2 term added: ``p.grad`` itself without weight decay."""
    return p.grad + weight_decay * p.data if weight_decay else p.grad


class _FlatBuffers:
    """An optimizer's per-parameter buffers as views into one flat array each.

    NOTE: a NumPy ufunc call costs 0.5 to 1 us on a small array, and the update
    rules take several calls per parameter. With the buffers and the gradients
    laid end to end, the rule runs once over all the parameters: the same
    operations on the same numbers, so the same bits. Only NumPy float64
    parameters qualify (what `Parameter` holds); each step checks that they
    still do, and otherwise the optimizer updates parameter by parameter.
    """

    def __init__(self, shapes: list[tuple[int, ...]], count: int) -> None:
        self.shapes = shapes
        bounds = [0, *itertools.accumulate(math.prod(shape) for shape in shapes)]
        self.slices = [slice(start, stop) for start, stop in itertools.pairwise(bounds)]
        self.buffers = [np.zeros(bounds[-1]) for _ in range(count)]
        self.views = [self._split(buffer) for buffer in self.buffers]
        self.grad = np.empty(bounds[-1])
        self.update = np.empty(bounds[-1])
        self.update_views = self._split(self.update)

    @classmethod
    def of(cls, params: list[Parameter], count: int) -> _FlatBuffers | None:
        """Flat buffers for `params`, or None unless all are NumPy float64."""
        if all(_is_float64(p.data) for p in params):
            return cls([p.data.shape for p in params], count)
        return None

    def _split(self, flat: Array) -> list[Array]:
        """Each parameter's view of `flat`, in its shape."""
        return [
            flat[part].reshape(shape) for part, shape in zip(self.slices, self.shapes, strict=True)
        ]

    def holds(self, params: list[Parameter], buffers: tuple[list[Array], ...], decay: bool) -> bool:
        """Whether a flat step gives the bits of the per-parameter step.

        Every parameter's data and grad must still be NumPy float64 of the shape
        the buffers were made for, and every buffer its view (a user may replace
        any of them). With weight decay all the data are read before any is
        written, so no two parameters may share their data's memory.
        """
        if len(params) != len(self.shapes):
            return False
        for p, shape in zip(params, self.shapes, strict=True):
            data, grad = p.data, p.grad
            if not (
                _is_float64(data)
                and _is_float64(grad)
                and data.shape == shape
                and grad.shape == shape
            ):
                return False
        for views, buffer in zip(self.views, buffers, strict=True):
            if not (len(buffer) == len(views) and all(map(operator.is_, buffer, views))):
                return False
        # NOTE: a deep copy keeps the entries' identities but makes each a copy of its
        # own: the views must still be views of the flat arrays
        for views, flat in zip(
            [*self.views, self.update_views], [*self.buffers, self.update], strict=True
        ):
            if not all(view.base is flat for view in views):
                return False
        if decay:
            owners = {id(p.data if p.data.base is None else p.data.base) for p in params}
            return len(owners) == len(params)
        return True

    def gradient(self, grads: list[Array]) -> Array:
        """`grads`, one per parameter, end to end."""
        return np.concatenate(grads, axis=None, out=self.grad)

    def subtract(self, params: list[Parameter]) -> None:
        """``p.data -= step`` for each parameter, from the step written to `update`."""
        for p, step in zip(params, self.update_views, strict=True):
            p.data -= step


_FLOAT64 = np.dtype(np.float64)


def _is_float64(a: object) -> bool:
    """Whether `a` is a NumPy array of native float64."""
    return type(a) is np.ndarray and a.dtype is _FLOAT64
