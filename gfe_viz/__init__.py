"""gfe-viz: Gradient Flow Encoding, its AMD solver, training, experiments and lessons.

Gradient Flow Encoding: Flouris, Volokitin, Bredell, Konukoglu, "Explicit and data-Efficient
Encoding via Gradient Flow", arXiv 2412.00864. Dynamical truncation (``gfe_viz.truncation``):
Chen, "Derivation of effective gradient flow equations and dynamical truncation of training data
in Deep Learning", arXiv 2501.07400. Both are cited in CITATION.cff.
"""

from importlib.metadata import version

from .amd import AMD_MNIST, AMDOptions
from .encode import encode
from .flows import GradientFlow
from .models import Autoencoder, LinearDecoder, MLPDecoder
from .presets import AMD_FAST, TRAINING_FAST, TRAINING_PAPER
from .solution import EncodeResult, Status
from .solvers import AMD, RK4, Dopri5, Euler, Solver

__version__ = version("gfe-viz")  # one source: pyproject.toml

__all__ = [
    "AMD",
    "AMD_FAST",
    "AMD_MNIST",
    "AMDOptions",
    "Autoencoder",
    "Dopri5",
    "EncodeResult",
    "Euler",
    "GradientFlow",
    "LinearDecoder",
    "MLPDecoder",
    "RK4",
    "Solver",
    "Status",
    "TRAINING_FAST",
    "TRAINING_PAPER",
    "encode",
]
