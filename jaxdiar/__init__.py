"""jaxdiar: multi-channel speaker diarization in JAX/Flax."""

__version__ = "0.1.0"
