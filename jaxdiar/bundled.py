"""The trained models shipped inside the package (jaxdiar/models/*.jaxdiar).

- `array8`: 8 microphones on a 10 cm circle (AMI Array1 / AliMeeting layout), `compact`
  spatial features; recipe `configs/array8.py`.
- `mono`: one distant microphone, `lps` features; recipe `configs/mono.py`.

Model cards (data, config, steps, wall time, meeting-level DER): README, "Bundled models".
"""

import importlib.resources
import pathlib

MODELS = {"array8": "array8.jaxdiar", "mono": "mono.jaxdiar"}
ARRAY_CHANNELS = 8


def path(name: str) -> pathlib.Path:
  if name not in MODELS:
    raise KeyError(f"no bundled model {name!r}; bundled: {', '.join(MODELS)}")
  return pathlib.Path(str(importlib.resources.files("jaxdiar") / "models" / MODELS[name]))


def resolve(model) -> pathlib.Path:
  """A bundled model's file for its name, any other value as a path."""
  return path(model) if model in MODELS else pathlib.Path(model)


def choose(num_channels: int) -> str:
  """The bundled model for a recording of `num_channels` channels: the array model for the
  8-microphone array, the one-channel model (first channel) for anything else."""
  return "array8" if num_channels == ARRAY_CHANNELS else "mono"
