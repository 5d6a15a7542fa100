"""Where the microphones are: named presets of common arrays, or the user's own file.

`load(spec)` takes a preset name (`PRESETS`) or a JSON / CSV file of `[x, y, z]` metres, one
microphone per row in channel order (JSON: a list of rows, or `{"mics": [...]}`; CSV: three
numbers a line, `#` comments and a header line allowed). Only the positions relative to each
other matter (the array's centre and rotation do not): the spatial stages read azimuths in the
array's own frame.
"""

import json
import math
import pathlib

import numpy as np


def _circle(num: int, radius: float, first_deg: float = 0.0, step_deg: float | None = None,
            centre: bool = False) -> list[list[float]]:
  step = 360.0 / num if step_deg is None else step_deg
  ring = [[round(radius * math.cos(math.radians(first_deg + i * step)), 5),
           round(radius * math.sin(math.radians(first_deg + i * step)), 5), 0.0]
          for i in range(num)]
  return ([[0.0, 0.0, 0.0]] if centre else []) + ring


# name: (positions in channel order, where they were taken from)
PRESETS = {
    "ami-array1": (_circle(8, 0.10),
                   "AMI Meeting Corpus: Array1, 8 omnidirectional microphones on a circle of "
                   "20 cm diameter, channels Array1-01..08 in order round it (the bundled array8 "
                   "model's own geometry)"),
    "respeaker-4": ([[-0.032, 0.0, 0.0], [0.0, -0.032, 0.0], [0.032, 0.0, 0.0],
                     [0.0, 0.032, 0.0]],
                    "ReSpeaker USB Mic Array v2.0 / 4-Mic Array for Raspberry Pi: 4 microphones "
                    "at the corners of a square, 3.2 cm from its centre (ODAS configuration "
                    "respeaker_usb_4_mic_array.cfg); raw microphone channels only"),
    "respeaker-6": (_circle(6, 0.0463, first_deg=120.0, step_deg=60.0),
                    "ReSpeaker 6-Mic Circular Array kit for Raspberry Pi: 6 microphones on a "
                    "circle of radius 4.63 cm (ODAS configuration respeaker_6_mic_array.cfg); "
                    "the two playback channels dropped"),
    "uma-8": (_circle(6, 0.043, centre=True),
              "miniDSP UMA-8 USB mic array: one microphone at the centre, 6 on a circle of "
              "radius 4.3 cm (the board's drawing in the UMA-8 user manual)"),
    "libricss": (_circle(6, 0.0425, centre=True),
                 "LibriCSS (Chen et al., ICASSP 2020): a 7-channel circular array, one "
                 "microphone at the centre, 6 on a circle of radius 4.25 cm"),
    "kinect-xbox360": ([[0.113, 0.02, 0.0], [-0.036, 0.02, 0.0], [-0.076, 0.02, 0.0],
                        [-0.113, 0.02, 0.0]],
                       "Xbox 360 Kinect (model 1473): a linear 4-microphone array, positions "
                       "measured by G. Salvi, 'MS Kinect microphone array geometry' (2013)"),
}


class GeometryError(ValueError):
  """A geometry that cannot be read or does not fit the recording (message says why)."""


def load(spec) -> np.ndarray:
  """[M, 3] microphone positions (metres) of a preset name or a JSON / CSV file."""
  if isinstance(spec, (list, tuple, np.ndarray)):
    return _checked(np.asarray(spec, np.float64), "the positions given")
  name = str(spec)
  if name in PRESETS:
    return np.asarray(PRESETS[name][0], np.float64)
  path = pathlib.Path(name).expanduser()
  if not path.is_file():
    raise GeometryError(f"--mics {name}: neither a preset ({', '.join(sorted(PRESETS))}) nor a "
                        "file of microphone positions")
  text = path.read_text()
  if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise GeometryError(f"--mics {name}: not valid JSON ({e})") from None
    if isinstance(data, dict):
      data = data.get("mics", data.get("positions"))
    try:
      positions = np.asarray(data, np.float64)
    except (TypeError, ValueError):
      positions = np.zeros((0,))
  else:
    rows = []
    for line in text.splitlines():
      line = line.split("#")[0].strip()
      if not line:
        continue
      try:
        rows.append([float(x) for x in line.replace(";", ",").replace("\t", ",").split(",")
                     if x.strip()])
      except ValueError:
        if rows:                      # a header is allowed on the first line only
          raise GeometryError(f"--mics {name}: not a number in line {line!r}") from None
    positions = np.asarray(rows, np.float64) if rows and len({len(r) for r in rows}) == 1 \
        else np.zeros((0,))
  return _checked(positions, f"--mics {name}")


def _checked(positions: np.ndarray, what: str) -> np.ndarray:
  if positions.ndim != 2 or positions.shape[1] not in (2, 3) or len(positions) < 2:
    raise GeometryError(f"{what}: expected one [x, y, z] row (metres) per microphone, at "
                        f"least two microphones")
  if positions.shape[1] == 2:
    positions = np.pad(positions, ((0, 0), (0, 1)))
  if not np.all(np.isfinite(positions)):
    raise GeometryError(f"{what}: positions must be finite numbers")
  span = np.max(np.linalg.norm(positions[:, None] - positions[None], axis=-1))
  if span < 0.005:
    raise GeometryError(f"{what}: the microphones are less than 5 mm apart (metres expected)")
  if span > 10.0:
    raise GeometryError(f"{what}: the microphones are {span:.0f} m apart (metres expected; "
                        "centimetres or millimetres given?)")
  return positions


def same(a, b, tolerance: float = 0.005) -> bool:
  """Whether two geometries are the same array (same count; each microphone within
  `tolerance` metres once both are centred)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape:
    return False
  return bool(np.all(np.linalg.norm((a - a.mean(0)) - (b - b.mean(0)), axis=1) <= tolerance))


def aperture(positions) -> float:
  """The largest distance between two microphones (metres)."""
  p = np.asarray(positions, np.float64)
  return float(np.max(np.linalg.norm(p[:, None] - p[None], axis=-1)))
