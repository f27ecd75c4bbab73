"""Optimizers: update parameters from their gradients, ``step()`` after each backward.

`SGD`, `Adam` and `AdamW` follow PyTorch's update rules and parameter names.
Every optimizer has ``state_dict()`` and ``load_state_dict()``, so that a
training run resumes exactly: save the model's and the optimizer's state,
load both later, and the following steps are bit for bit those of the
uninterrupted run.
"""

from __future__ import annotations

import math
import numbers
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
        self.momentum_buffer: list[Array] = [_zeros_like(p.data) for p in self.params]

    def _check_settings(self, settings: dict[str, Any]) -> None:
        super()._check_settings(settings)
        _check_unit("SGD", "momentum", settings["momentum"])
        _check_non_negative("SGD", "weight_decay", settings["weight_decay"])

    def step(self) -> None:
        self.step_count += 1
        buffers = self.momentum_buffer
        for i, p in enumerate(self.params):
            v = buffers[i] = _array_api.like(buffers[i], p.data)
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            # NOTE: NumPy arrays are updated in place, without temporaries of their size;
            # other libraries' are replaced by new arrays (JAX's are immutable)
            in_place = type(p.data) is np.ndarray
            if self.momentum:
                if in_place:
                    v *= self.momentum
                    v += g
                else:
                    v = buffers[i] = v * self.momentum + g
                g = g + self.momentum * v if self.nesterov else v
            if in_place:
                p.data -= self.lr * g
            else:
                p.data = p.data - self.lr * g


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
        self.exp_avg: list[Array] = [_zeros_like(p.data) for p in self.params]
        self.exp_avg_sq: list[Array] = [_zeros_like(p.data) for p in self.params]

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
        for i, p in enumerate(self.params):
            m = self.exp_avg[i] = _array_api.like(self.exp_avg[i], p.data)
            v = self.exp_avg_sq[i] = _array_api.like(self.exp_avg_sq[i], p.data)
            g = self._decay(p)
            if type(p.data) is np.ndarray:  # NOTE: in place, as in SGD
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p.data -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)
            else:
                xp = _array_api.namespace_of(p.data)
                m = self.exp_avg[i] = m * beta1 + (1 - beta1) * g
                v = self.exp_avg_sq[i] = v * beta2 + (1 - beta2) * g * g
                p.data = p.data - self.lr * (m / correction1) / (
                    xp.sqrt(v / correction2) + self.eps
                )

    def _decay(self, p: Parameter) -> Array:
        """The gradient Adam averages: with the L2 term added."""
        return p.grad + self.weight_decay * p.data if self.weight_decay else p.grad


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
