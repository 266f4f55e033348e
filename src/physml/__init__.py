"""physml: the physics of machine learning as a reproducible pipeline."""

__version__ = "0.1.0"
