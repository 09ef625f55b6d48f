"""gfe-viz: Gradient Flow Encoding, its AMD solver, training, experiments and lessons."""

from .amd import AMD_MNIST, AMDOptions
from .encode import encode
from .flows import GradientFlow
from .models import Autoencoder, LinearDecoder, MLPDecoder
from .presets import AMD_FAST, TRAINING_FAST, TRAINING_PAPER
from .solution import EncodeResult, Status

__version__ = "0.1.0"

__all__ = ["AMD_FAST", "AMD_MNIST", "AMDOptions", "Autoencoder", "EncodeResult", "GradientFlow", "LinearDecoder", "MLPDecoder",
           "Status", "TRAINING_FAST", "TRAINING_PAPER", "encode"]
