"""jaxdiar: multi-channel speaker diarization in JAX/Flax.

    from jaxdiar import Pipeline
    annotation = Pipeline.from_pretrained()("meeting.wav")    # a pyannote.core.Annotation

`Pipeline` and `exclusive` are imported on first use (`import jaxdiar.io.rttm` stays light).
"""

__version__ = "0.1.0"
__all__ = ["Pipeline", "exclusive"]


def __getattr__(name: str):
  if name == "Pipeline":
    from jaxdiar.pipeline import Pipeline
    return Pipeline
  if name == "exclusive":
    from jaxdiar.io.formats import exclusive
    return exclusive
  raise AttributeError(f"module 'jaxdiar' has no attribute {name!r}")
