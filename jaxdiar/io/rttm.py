"""RTTM and UEM files: read and write (UTF-8), with errors that name the file and line.

RTTM: `SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>`.
UEM:  `<uri> <channel> <start> <end>`.
"""

from collections.abc import Iterable
import dataclasses
import pathlib

from jaxdiar.io import atomic


class FormatError(ValueError):
  """A malformed RTTM or UEM line."""


@dataclasses.dataclass(frozen=True, order=True)
class Turn:
  """One speaker turn, times in seconds."""
  uri: str
  onset: float
  offset: float
  speaker: str

  @property
  def duration(self) -> float:
    return self.offset - self.onset


def read_rttm(path) -> dict[str, list[Turn]]:
  """uri -> turns sorted by onset. Non-SPEAKER lines (SPKR-INFO, ...) are skipped."""
  turns: dict[str, list[Turn]] = {}
  for lineno, fields in _lines(path):
    if fields[0] != "SPEAKER":
      continue
    if len(fields) < 8:
      raise FormatError(f"{path}:{lineno}: an RTTM SPEAKER line needs at least 8 fields, "
                        f"got {len(fields)}")
    onset, duration = _float(fields[3], path, lineno), _float(fields[4], path, lineno)
    if onset < 0 or duration < 0:
      raise FormatError(f"{path}:{lineno}: negative onset or duration ({onset}, {duration})")
    turns.setdefault(fields[1], []).append(Turn(fields[1], onset, onset + duration, fields[7]))
  return {uri: sorted(t) for uri, t in turns.items()}


def read_uem(path) -> dict[str, list[tuple[float, float]]]:
  """uri -> list of scored (start, end) regions."""
  regions: dict[str, list[tuple[float, float]]] = {}
  for lineno, fields in _lines(path):
    if len(fields) != 4:
      raise FormatError(f"{path}:{lineno}: a UEM line has 4 fields, got {len(fields)}")
    start, end = _float(fields[2], path, lineno), _float(fields[3], path, lineno)
    if end < start:
      raise FormatError(f"{path}:{lineno}: UEM end {end} before start {start}")
    regions.setdefault(fields[0], []).append((start, end))
  return regions


def _field(text: str, what: str, first: bool = False) -> str:
  """`text` if it can be written as one whitespace-separated field and read back."""
  if not text or text.split() != [text] or (first and text.startswith(("#", ";;"))):
    raise ValueError(f"{what} {text!r} cannot be written as one field (empty, whitespace"
                     f"{', or a comment marker' if first else ''})")
  return text


def safe_uri(name: str) -> str:
  """`name` as an RTTM uri: whitespace (and a leading comment marker) become `_`; empty
  becomes `recording`. `safe_uri(x) == x` for a name RTTM can hold as it is."""
  uri = "_".join(str(name).split(" ")) if name else "recording"
  uri = "".join("_" if c.isspace() else c for c in uri) or "recording"
  return "_" + uri[1:] if uri.startswith(("#", ";")) else uri


def unique_uris(names: Iterable[str]) -> list[str]:
  """`safe_uri` of each name, the second and later of equal ones suffixed `-2`, `-3`, ..."""
  out, seen = [], set()
  for name in names:
    uri, k = safe_uri(name), 1
    while uri in seen:
      k += 1
      uri = f"{safe_uri(name)}-{k}"
    seen.add(uri)
    out.append(uri)
  return out


def format_rttm(turns: Iterable[Turn]) -> str:
  turns = list(turns)
  for t in turns:
    _field(t.uri, "uri"), _field(t.speaker, "speaker label")
  return "".join(f"SPEAKER {t.uri} 1 {t.onset:.3f} {t.duration:.3f} <NA> <NA> {t.speaker} "
                 "<NA> <NA>\n" for t in sorted(turns))


def write_rttm(path, turns: Iterable[Turn]) -> None:
  atomic.write_text(path, format_rttm(turns))


def write_uem(path, regions: dict[str, list[tuple[float, float]]]) -> None:
  for uri in regions:
    _field(uri, "uri", first=True)
  atomic.write_text(path, "".join(f"{uri} 1 {s:.3f} {e:.3f}\n"
                                  for uri in sorted(regions) for s, e in regions[uri]))


def _lines(path):
  try:
    text = pathlib.Path(path).read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise FormatError(f"{path}: not UTF-8 ({e})") from e
  for lineno, line in enumerate(text.splitlines(), start=1):
    fields = line.split()
    if fields and not fields[0].startswith(("#", ";;")):
      yield lineno, fields


def _float(text: str, path, lineno: int) -> float:
  try:
    return float(text)
  except ValueError:
    raise FormatError(f"{path}:{lineno}: {text!r} is not a number") from None
