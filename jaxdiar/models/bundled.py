"""The trained models shipped inside the package (jaxdiar/models/*.jaxdiar).

- `array8`: 8 microphones on a 10 cm circle (AMI Array1 / AliMeeting layout), `compact`
  spatial features; recipe `configs/array8.py`.
- `mono`: one distant microphone, `lps` features; recipe `configs/mono.py`.
- `array8-live`: the causal variant of `array8` (a streaming step of 128 ms blocks), what
  `python -m jaxdiar.stream` runs on the array by default; recipe `configs/array8_causal.py`
  (weights stored in float16).

Model cards (data, config, steps, wall time, meeting-level DER): README, "Bundled models".
"""

import functools
import importlib.resources
import json
import pathlib

from jaxdiar.core import geometry

MODELS = {"array8": "array8.jaxdiar", "mono": "mono.jaxdiar",
          "array8-live": "array8_live.jaxdiar"}
# The causal model `python -m jaxdiar.stream` runs by default on the 8-microphone array.
LIVE = "array8-live"
# ... and its decision latency when --latency is not given (chosen on the dev meetings, the
# lowest latency within 5 DER points of the same model offline: docs/inference.md).
LIVE_LATENCY = 0.25
# The decoding settings a one-channel model adds when the recording's geometry is given
# (`--mics`): the spatial stages with the user's array, and their resegmentation's weights,
# fitted for small arrays (where and how they were chosen: the file's "chosen" field).
ANY_ARRAY = "any-array.json"
ARRAY_CHANNELS = 8


def path(name: str) -> pathlib.Path:
  if name not in MODELS:
    raise KeyError(f"no bundled model {name!r}; bundled: {', '.join(MODELS)}")
  return pathlib.Path(str(importlib.resources.files("jaxdiar") / "models" / MODELS[name]))


def resolve(model) -> pathlib.Path:
  """A bundled model's file for its name, any other value as a path."""
  return path(model) if model in MODELS else pathlib.Path(model)


def choose(num_channels: int, mics=None) -> str:
  """The bundled model for a recording of `num_channels` channels: the array model for the
  8-microphone array (its own geometry, when `mics` gives one), the one-channel model for
  anything else (with `mics`, the spatial stages use that geometry)."""
  if mics is not None:
    return "array8" if geometry.same(mics, geometry.PRESETS["ami-array1"][0]) else "mono"
  return "array8" if num_channels == ARRAY_CHANNELS else "mono"


def choose_live(num_channels: int, mics=None) -> str:
  """The bundled model a live stream of `num_channels` channels runs: the causal array model
  where `choose` gives the array model, else `choose`'s (in the rolling mode)."""
  name = choose(num_channels, mics)
  return LIVE if name == "array8" else name


@functools.cache
def any_array_settings() -> dict:
  """The decoding settings of the one-channel model with a user's geometry (`ANY_ARRAY`)."""
  data = json.loads((importlib.resources.files("jaxdiar") / "models" / ANY_ARRAY).read_text())
  return dict(data["settings"])
