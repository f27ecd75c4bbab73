"""Optimizers: update parameters from their gradients, ``step()`` after each backward."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tinygrad_act.base import Array, Parameter


class Optimizer:
    """Base of the optimizers: holds the parameters, and zeroes their gradients."""

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty list of parameters")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr}")
        self.lr = lr

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (gradients accumulate otherwise)."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Update every parameter from its ``.grad``."""
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional momentum (PyTorch's form).

    .. math::
        v \leftarrow \mu v + g, \qquad \theta \leftarrow \theta - \eta v

    >>> p = Parameter([1.0]); p.grad[...] = 2.0
    >>> SGD([p], lr=0.1).step(); p.data
    array([0.8])
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0) -> None:
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self._velocity: list[Array] = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        for p, v in zip(self.params, self._velocity, strict=True):
            v *= self.momentum
            v += p.grad
            p.data -= self.lr * v


class Adam(Optimizer):
    r"""Adam (Kingma and Ba, 2015), with bias correction.

    .. math::
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        \theta \leftarrow \theta
            - \eta \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr)
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        self.betas, self.eps = betas, eps
        self._m = [np.zeros_like(p.data) for p in self.params]
        self._v = [np.zeros_like(p.data) for p in self.params]
        self._t = 0

    def step(self) -> None:
        self._t += 1
        beta1, beta2 = self.betas
        for p, m, v in zip(self.params, self._m, self._v, strict=True):
            m *= beta1
            m += (1 - beta1) * p.grad
            v *= beta2
            v += (1 - beta2) * p.grad**2
            m_hat = m / (1 - beta1**self._t)
            v_hat = v / (1 - beta2**self._t)
            p.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
