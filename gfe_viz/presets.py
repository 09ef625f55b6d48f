"""Named encoders for training: the paper's settings and the fast training preset.

Each preset is a dict of keyword arguments for :func:`gfe_viz.encode` (never ``z0``, ``loss`` or
``tau``, which belong to the problem), so ``encode(decoder, x, z0=z0, tau=1e4, **TRAINING_FAST)``
is the encoder that fast training uses.

``TRAINING_FAST`` takes fewer and cheaper decoder evaluations for the same decoder quality:

- longer steps: dt may grow (by 1.5 instead of 1.1 per accepted step) up to 300 instead of
  10. The first-order flow of the per-pixel-mean loss is far from its stability limit at dt = 10,
  and the sufficient-decrease test still rejects any step that does not lower the loss;
- a stricter stopping point: sigma is scaled with dt_max (x 1/30), so the acceptance test asks
  for the same decrease per unit of time, but the convergence threshold only x 10 (1e-4 per step):
  the test compares the loss change per *step*, and steps shrunk by rejections would otherwise
  pass it early. With the threshold scaled x 30 (3e-4) the decoders matched the paper's up to
  about 1,000 training images and then fell behind (``results/fast-vs-paper``, README);
- a sample stops where its dt underflows (``stop_at_underflow``): it sits at a minimum to the
  resolution of its loss, and the paper's rules would spend twenty-odd rejected attempts per
  forced step there until the convergence test starts at 0.02 tau;
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

#: AMD settings of the fast preset: longer steps, the paper's decrease rule scaled to them, a stricter stop.
AMD_FAST = AMD_MNIST.replace(dt_max=300.0, grow=1.5, sigma=AMD_MNIST.sigma / 30,
                             conv_tol=AMD_MNIST.conv_tol * 10, stop_at_underflow=True)

#: The fast training preset (see the module docstring).
TRAINING_FAST = {"solver": "amd", "order": 1, "acceptance": "per_sample", "amd": AMD_FAST, "gradient": "auto"}

#: The encoders ``gfe-viz data-efficiency --encoder`` trains with.
ENCODERS = {"paper": TRAINING_PAPER, "fast": TRAINING_FAST}
