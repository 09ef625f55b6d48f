"""Named encoders for training: the paper's settings and the fast training preset.

Each preset is a dict of keyword arguments for :func:`gfe_viz.encode` (never ``z0``, ``loss`` or
``tau``, which belong to the problem), so ``encode(decoder, x, z0=z0, tau=1e4, **TRAINING_FAST)``
is the encoder that fast training uses.

``TRAINING_FAST`` takes fewer and cheaper decoder evaluations for a decoder at least as good:

- longer steps: dt may grow up to 300 instead of 10 (by 1.25 per accepted step instead of 1.1).
  The first-order flow of the per-pixel-mean loss is far from its stability limit at dt = 10,
  and the sufficient-decrease test still rejects any step that does not lower the loss; sigma is
  scaled with dt_max (x 1/30), so the test asks for the same decrease per unit of time;
- a harder shrink after a rejection (x 0.3 instead of x 0.5, with the same dt floor of about
  1e-6): late in training the landscape is stiff and a step that fails usually needs more than
  one halving; with grow 1.5 and shrink 0.5 (the first version of this preset) two in five
  attempts were rejections there;
- an earlier convergence test: from 0.01 tau instead of 0.02 tau, with the paper's threshold
  (1e-5 per step). Nearly all of an encode's evaluations are spent before the test may stop it;
  on a decoder after 21,000 training images this and the two changes above took 82 evaluations
  per image (maximum 189) against the first version's 155 (368) and the paper encoder's 132 (327),
  with the training gradient closer to the paper encoder's
  (``benchmarks/bench_encoders_on_a_trained_decoder.py``);
- a sample stops where its dt underflows (``stop_at_underflow``): it sits at a minimum to the
  resolution of its loss, and the paper's rules would spend twenty-odd rejected attempts per
  forced step there;
- per-sample acceptance, as in the paper's settings: a sample's latent does not wait for, nor
  shrink its steps for, its batch-mates;
- the hand-written loss and latent gradient of :mod:`gfe_viz.fused_gradient` where the decoder is
  an MLP with a built-in loss (autograd otherwise).

Validation always encodes with the paper's settings, so a decoder trained fast is judged by the
same yardstick (README, "Fast training"; ``results/fast-vs-paper``).
"""

from __future__ import annotations

from .amd import AMD_MNIST

#: The authors' encoder: first order, AMD with their MNIST settings, every sample on its own.
TRAINING_PAPER = {"solver": "amd", "order": 1, "acceptance": "per_sample", "amd": AMD_MNIST}

#: AMD settings of the fast preset: longer steps, the paper's decrease rule scaled to them, a harder
#: shrink, the convergence test from 0.01 tau, a stop where dt underflows.
AMD_FAST = AMD_MNIST.replace(
    dt_max=300.0,
    grow=1.25,
    shrink=0.3,
    max_shrinks=12,
    sigma=AMD_MNIST.sigma / 30,
    conv_after=0.01,
    stop_at_underflow=True,
)

#: The fast training preset (see the module docstring).
TRAINING_FAST = {"solver": "amd", "order": 1, "acceptance": "per_sample", "amd": AMD_FAST, "gradient": "auto"}

#: The encoders ``gfe-viz data-efficiency --encoder`` trains with.
ENCODERS = {"paper": TRAINING_PAPER, "fast": TRAINING_FAST}
