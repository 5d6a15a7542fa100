"""Diarization output formats: a `pyannote.core.Annotation` to and from RTTM, JSON, CSV,
SubRip (SRT), WebVTT, Praat TextGrid and ELAN EAF.

    text = formats.dumps(annotation, "srt")
    annotation = formats.loads(text, "srt", uri="meeting")

Times are kept to the millisecond (what SRT, VTT and EAF hold; RTTM, JSON and CSV are written
with three decimals). SRT/VTT carry one cue per turn whose text is the talker's label; the
TextGrid has one interval tier per talker, the EAF one tier per talker. Subtitles go through
pysubs2, TextGrids through praatio and EAF through pympi-ling (the maintained readers and
writers of those formats).
"""

import csv
import io
import json
import os
import pathlib
import tempfile

from pyannote.core import Annotation, Segment

from jaxdiar.io import rttm

FORMATS = ("rttm", "json", "csv", "srt", "vtt", "textgrid", "eaf")
# Formats that hold several recordings in one file (a uri on each line).
MULTI = ("rttm", "csv")
EXTENSIONS = {".rttm": "rttm", ".json": "json", ".csv": "csv", ".srt": "srt", ".vtt": "vtt",
              ".textgrid": "textgrid", ".eaf": "eaf"}
SUFFIX = {v: k if v != "textgrid" else ".TextGrid" for k, v in EXTENSIONS.items()}


class FormatError(ValueError):
  """An unknown format, or a file that does not read as its format (message says why)."""


def infer_format(path, given: str | None = None) -> str:
  """The format named by `given`, else by `path`'s extension; RTTM for stdout (`-`) and for
  any other extension (what `--out` always wrote)."""
  if given is not None:
    if given.lower() not in FORMATS:
      raise FormatError(f"unknown format {given!r}; formats: {', '.join(FORMATS)}")
    return given.lower()
  return EXTENSIONS.get(pathlib.Path(str(path)).suffix.lower(), "rttm")


# ---------------------------------------------------------------------------------- turns

def to_annotation(turns, uri: str | None = None) -> Annotation:
  """An Annotation of `rttm.Turn`s (one track per turn; a uri from the turns if not given)."""
  turns = list(turns)
  annotation = Annotation(uri=uri if uri is not None else (turns[0].uri if turns else None))
  for t in turns:
    segment = Segment(t.onset, t.offset)
    annotation[segment, annotation.new_track(segment)] = t.speaker
  return annotation


def to_turns(annotation: Annotation, uri: str | None = None) -> list[rttm.Turn]:
  uri = uri or annotation.uri or "recording"
  return sorted(rttm.Turn(uri, s.start, s.end, str(label))
                for s, _, label in annotation.itertracks(yield_label=True))


def overlap_regions(annotation: Annotation) -> list[tuple[float, float]]:
  """Time regions where two or more talkers are active."""
  events = sorted([(s.start, 1) for s, _ in annotation.itertracks()]
                  + [(s.end, -1) for s, _ in annotation.itertracks()])
  regions, active, start = [], 0, None
  for time, delta in events:
    active += delta
    if active >= 2 and start is None:
      start = time
    elif active < 2 and start is not None:
      if time > start:
        regions.append((start, time))
      start = None
  return regions


def _ms(t: float) -> int:
  return int(round(t * 1000))


# --------------------------------------------------------------------------------- writers

def result_json(annotation: Annotation, *, uri: str | None = None, duration: float | None = None,
                model: str | None = None, settings: dict | None = None) -> dict:
  """The JSON answer (CLI and service alike): uri, duration, speakers, segments, overlap
  regions, and the model and decoding settings used where given."""
  turns = to_turns(annotation, uri)
  out = dict(uri=uri or annotation.uri,
             duration=None if duration is None else round(duration, 3),
             speakers=sorted({t.speaker for t in turns}),
             segments=[dict(start=round(t.onset, 3), end=round(t.offset, 3), speaker=t.speaker)
                       for t in turns],
             overlap=[dict(start=round(a, 3), end=round(b, 3))
                      for a, b in overlap_regions(annotation)])
  if model is not None:
    out["model"] = model
  if settings is not None:
    out["settings"] = settings
  return out


def _subtitles(annotation: Annotation, fmt: str) -> str:
  import pysubs2
  subs = pysubs2.SSAFile()
  for t in to_turns(annotation):
    subs.append(pysubs2.SSAEvent(start=_ms(t.onset), end=_ms(t.offset), text=t.speaker))
  return subs.to_string(fmt)


def _textgrid(annotation: Annotation, duration: float | None) -> str:
  from praatio import textgrid
  end = max([duration or 0.0] + [s.end for s in annotation.get_timeline()])
  grid = textgrid.Textgrid(0.0, end)
  for label in sorted(annotation.labels(), key=str):
    entries = [(round(s.start, 3), round(s.end, 3), str(label))
               for s in annotation.label_timeline(label).support()]
    grid.addTier(textgrid.IntervalTier(str(label), entries, 0.0, end))
  return _through_file(lambda path: grid.save(path, format="long_textgrid",
                                              includeBlankSpaces=True,
                                              reportingMode="silence"))


def _eaf(annotation: Annotation) -> str:
  import pympi
  eaf = pympi.Elan.Eaf()
  eaf.remove_tier("default")
  for label in sorted(annotation.labels(), key=str):
    eaf.add_tier(str(label))
    for s in annotation.label_timeline(label).support():
      eaf.add_annotation(str(label), _ms(s.start), _ms(s.end), str(label))
  return _through_file(lambda path: pympi.Elan.to_eaf(path, eaf, pretty=True))


def _through_file(write) -> str:
  """What a writer that only takes a path writes, as text."""
  fd, path = tempfile.mkstemp(prefix="jaxdiar-")
  os.close(fd)
  try:
    write(path)
    return pathlib.Path(path).read_text(encoding="utf-8")
  finally:
    os.unlink(path)


def dumps(annotation: Annotation, fmt: str, *, uri: str | None = None,
          duration: float | None = None, model: str | None = None,
          settings: dict | None = None) -> str:
  """`annotation` as the text of format `fmt` (FORMATS); the JSON one is `result_json`'s."""
  fmt = infer_format("-", fmt)
  if fmt == "rttm":
    return rttm.format_rttm(to_turns(annotation))
  if fmt == "json":
    return json.dumps(result_json(annotation, uri=uri, duration=duration, model=model,
                                  settings=settings), indent=1) + "\n"
  if fmt == "csv":
    return dumps_csv([annotation])
  if fmt in ("srt", "vtt"):
    return _subtitles(annotation, fmt)
  if fmt == "textgrid":
    return _textgrid(annotation, duration)
  return _eaf(annotation)


def dumps_csv(annotations) -> str:
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["uri", "start", "end", "duration", "speaker"])
  for annotation in annotations:
    for t in to_turns(annotation):
      writer.writerow([t.uri, f"{t.onset:.3f}", f"{t.offset:.3f}", f"{t.duration:.3f}",
                       t.speaker])
  return out.getvalue()


def dumps_many(annotations, fmt: str) -> str:
  """Several recordings in one file (formats in MULTI)."""
  if fmt == "rttm":
    return "".join(rttm.format_rttm(to_turns(a)) for a in annotations)
  if fmt == "csv":
    return dumps_csv(annotations)
  raise FormatError(f"a {fmt} file holds one recording: write several with --out-dir")


# --------------------------------------------------------------------------------- readers

def loads(text: str, fmt: str, uri: str | None = None) -> Annotation:
  """The Annotation of one recording written in format `fmt` (the first uri for RTTM/CSV).
  Raises FormatError."""
  fmt = infer_format("-", fmt)
  try:
    if fmt == "rttm":
      return _loads_rttm(text, uri)
    if fmt == "json":
      body = json.loads(text)
      turns = [rttm.Turn(uri or body.get("uri") or "recording", float(s["start"]),
                         float(s["end"]), str(s["speaker"])) for s in body["segments"]]
      return to_annotation(turns, uri or body.get("uri"))
    if fmt == "csv":
      rows = list(csv.DictReader(io.StringIO(text)))
      first = uri or (rows[0]["uri"] if rows else None)
      return to_annotation([rttm.Turn(first, float(r["start"]), float(r["end"]), r["speaker"])
                            for r in rows if uri or r["uri"] == first], first)
    if fmt in ("srt", "vtt"):
      import pysubs2
      subs = pysubs2.SSAFile.from_string(text, format_=fmt)
      return to_annotation([rttm.Turn(uri or "recording", e.start / 1000, e.end / 1000,
                                      e.plaintext.strip()) for e in subs], uri)
    if fmt == "textgrid":
      from praatio import textgrid
      grid = _from_file(text, lambda path: textgrid.openTextgrid(path, includeEmptyIntervals=False))
      return to_annotation([rttm.Turn(uri or "recording", e.start, e.end, name)
                            for name in grid.tierNames for e in grid.getTier(name).entries],
                           uri)
    import pympi
    eaf = _from_file(text, pympi.Elan.Eaf)
    return to_annotation([rttm.Turn(uri or "recording", a / 1000, b / 1000, tier)
                          for tier in eaf.get_tier_names()
                          for a, b, *_ in eaf.get_annotation_data_for_tier(tier)], uri)
  except FormatError:
    raise
  except Exception as e:  # noqa: BLE001 -- any parser's failure is a format error here
    raise FormatError(f"not a {fmt} file ({type(e).__name__}: {e})") from e


def _loads_rttm(text: str, uri: str | None) -> Annotation:
  by_uri = _from_file(text, rttm.read_rttm)
  if not by_uri:
    return Annotation(uri=uri)
  first = next(iter(by_uri))
  return to_annotation(by_uri[first], uri or first)


def _from_file(text: str, read):
  fd, path = tempfile.mkstemp(prefix="jaxdiar-")
  with os.fdopen(fd, "w", encoding="utf-8") as f:
    f.write(text)
  try:
    return read(path)
  finally:
    os.unlink(path)


def load(path, fmt: str | None = None, uri: str | None = None) -> Annotation:
  return loads(pathlib.Path(path).read_text(encoding="utf-8"), infer_format(path, fmt), uri)


# ------------------------------------------------------------------------------- exclusive

def exclusive(annotation: Annotation) -> Annotation:
  """At most one talker at a time: in overlap, the talker whose current turn started first
  (ties: the label that sorts first). The union of speech is unchanged."""
  turns = to_turns(annotation)
  out = Annotation(uri=annotation.uri)
  if not turns:
    return out
  # A sweep over the turns' bounds: the turns active between two bounds are few.
  events = sorted([(t.onset, 1, i) for i, t in enumerate(turns)]
                  + [(t.offset, 0, i) for i, t in enumerate(turns)])
  active: set[int] = set()
  pieces = []                                     # [start, end, label], in time order
  for n, (time, kind, i) in enumerate(events):
    if kind:
      active.add(i)
    else:
      active.discard(i)
    end = events[n + 1][0] if n + 1 < len(events) else time
    if not active or end <= time:
      continue
    label = turns[min(active, key=lambda j: (turns[j].onset, turns[j].speaker))].speaker
    if pieces and pieces[-1][2] == label and pieces[-1][1] == time:
      pieces[-1][1] = end
    else:
      pieces.append([time, end, label])
  for a, b, label in pieces:
    segment = Segment(float(a), float(b))
    out[segment, out.new_track(segment)] = label
  return out
