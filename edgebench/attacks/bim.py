"""BIM — Basic Iterative Method, a.k.a. I-FGSM (Kurakin, Goodfellow & Bengio, "Adversarial examples in the
physical world", ICLR workshop 2017). Norm: L∞.

Defaults: 10 steps, step size α = ε / steps (so that ``steps`` steps can just reach the edge of the ball), no
random start. (Kurakin et al. use α = 1/255 and ``min(255 ε + 4, 1.25 · 255 ε)`` steps; pass
``abs_stepsize=1/255`` and ``steps=…`` for that.) Update, clipped to the ε-ball and to [0, 1] at every step::

    x_0     = x
    x_{t+1} = Clip_{x,ε} ( x_t + α · sign(∇_x J(x_t, y)) )        (targeted: x_t − α · sign(∇_x J(x_t, t)))

Per sample, the first iterate that is adversarial is kept (the forward pass of each step already shows
it, so this costs nothing); otherwise the last iterate. Cost per ε: ``steps`` forward+backward passes and
one forward on the last iterate.

Example::

    result = BIM(steps=10)(model, x, y, eps=[0.05, 0.1, 0.2])
"""

from __future__ import annotations

from edgebench.attacks import ATTACKS
from edgebench.attacks.pgd import PGD


@ATTACKS.register("bim")
class BIM(PGD):
    """Basic Iterative Method (iterated FGSM), L∞, untargeted or targeted: PGD's loop from the clean input.

    Args:
        steps: iterations (gradient evaluations) per ε.
        rel_stepsize: step size as a fraction of ε; default ``1 / steps`` (ignored when ``abs_stepsize`` is set).
        abs_stepsize: step size in input units.
    """

    name = "bim"
    norm = "linf"
    default_rel = 1.0

    def __init__(self, *, steps: int = 10, rel_stepsize: float | None = None,
                 abs_stepsize: float | None = None) -> None:
        super().__init__(steps=steps, rel_stepsize=rel_stepsize, abs_stepsize=abs_stepsize, random_start=False)
