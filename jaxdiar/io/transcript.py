"""Speaker-attributed transcripts: an ASR transcript (Whisper, faster-whisper or WhisperX JSON,
SRT or WebVTT) and a diarization in, each word (or segment, without word times) with its talker
out.

    segments = transcript.load("rec.json")
    attributed = transcript.attribute(segments, formats.exclusive(annotation))
    text = transcript.dumps(attributed, "srt")     # "[spk00] Hello there." cues

Each word gets the talker who overlaps it most in the (exclusive) diarization, or the nearest
talker within `max_gap` seconds when none overlaps, or none; a segment whose words change
talker is split there. The lookups are binary searches over the turns sorted by time.
"""

import dataclasses
import json
import pathlib
import re

import numpy as np
from pyannote.core import Annotation

from jaxdiar.io import formats

MAX_GAP = 0.5             # seconds: the nearest talker a word without overlap may take
TRANSCRIPT_FORMATS = ("json", "srt", "vtt")


@dataclasses.dataclass
class Word:
  text: str
  start: float | None
  end: float | None
  speaker: str | None = None


@dataclasses.dataclass
class Segment:
  start: float
  end: float
  text: str
  words: list[Word] | None = None
  speaker: str | None = None


class TranscriptError(ValueError):
  """A transcript that cannot be read (message says why)."""


# --------------------------------------------------------------------------------- reading

def load(path) -> list[Segment]:
  """The segments of a transcript file, in time order (format from the extension)."""
  path = pathlib.Path(path)
  fmt = path.suffix.lower().lstrip(".")
  if fmt not in TRANSCRIPT_FORMATS:
    raise TranscriptError(f"{path}: a transcript is JSON (Whisper, faster-whisper, WhisperX), "
                          f"SRT or VTT, not {path.suffix or 'a file without extension'}")
  try:
    text = path.read_text(encoding="utf-8")
  except (OSError, UnicodeDecodeError) as e:
    raise TranscriptError(f"{path}: cannot read ({e})") from e
  try:
    return loads(text, fmt)
  except TranscriptError as e:
    raise TranscriptError(f"{path}: {e}") from None


def loads(text: str, fmt: str) -> list[Segment]:
  if fmt == "json":
    try:
      body = json.loads(text)
    except json.JSONDecodeError as e:
      raise TranscriptError(f"not JSON ({e})") from None
    items = body.get("segments") if isinstance(body, dict) else body
    if not isinstance(items, list):
      raise TranscriptError("no 'segments' list (Whisper / faster-whisper / WhisperX JSON)")
    try:
      segments = [_segment(item) for item in items]
    except (KeyError, TypeError, ValueError) as e:
      raise TranscriptError(f"a segment without start/end/text ({e!r})") from None
  else:
    import pysubs2
    try:
      subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as e:  # noqa: BLE001 -- pysubs2's parse errors have no common base
      raise TranscriptError(f"not a {fmt} file ({e})") from None
    segments = [Segment(e.start / 1000, e.end / 1000, _untagged(e.plaintext)) for e in subs]
  return sorted(segments, key=lambda s: (s.start, s.end))


def _segment(item: dict) -> Segment:
  words = item.get("words")
  if words:
    words = [Word(str(w.get("word", w.get("text", ""))), _time(w.get("start")),
                  _time(w.get("end"))) for w in words]
  return Segment(float(item["start"]), float(item["end"]), str(item["text"]).strip(),
                 words or None)


def _time(value) -> float | None:
  return None if value is None else float(value)


def _untagged(text: str) -> str:
  """A cue's text without a leading `[speaker]` tag (one of ours, or WhisperX's)."""
  return re.sub(r"^\[[^\]]*\]\s*", "", text.strip())


# ------------------------------------------------------------------------------ attribution

class Speakers:
  """Who talks over an interval, by binary search in an exclusive diarization's turns."""

  def __init__(self, annotation: Annotation, max_gap: float = MAX_GAP):
    turns = formats.to_turns(annotation)
    self.starts = np.array([t.onset for t in turns])
    self.ends = np.array([t.offset for t in turns])
    self.labels = [t.speaker for t in turns]
    if len(turns) > 1 and np.any(self.starts[1:] < self.ends[:-1] - 1e-9):
      raise ValueError("attribution needs an exclusive diarization (formats.exclusive)")
    self.max_gap = max_gap

  def __call__(self, start: float, end: float) -> str | None:
    if not len(self.starts):
      return None
    end = max(end, start)
    lo = int(np.searchsorted(self.ends, start, side="right"))   # first turn ending after
    hi = int(np.searchsorted(self.starts, end, side="left"))    # turns starting before end
    best, share = None, 0.0
    totals: dict[str, float] = {}
    for i in range(lo, max(hi, lo)):
      totals[self.labels[i]] = totals.get(self.labels[i], 0.0) + (
          min(self.ends[i], end) - max(self.starts[i], start))
    for label, total in totals.items():
      if total > share:
        best, share = label, total
    if best is not None:
      return best
    # No overlap (or a point): the nearest turn, before or after, within max_gap.
    i = int(np.searchsorted(self.starts, start, side="right"))
    gaps = []
    if i > 0:
      gaps.append((max(0.0, start - self.ends[i - 1]), self.labels[i - 1]))
    if i < len(self.starts):
      gaps.append((max(0.0, self.starts[i] - end), self.labels[i]))
    gap, label = min(gaps)
    return label if gap <= self.max_gap else None


def attribute(segments: list[Segment], annotation: Annotation,
              max_gap: float = MAX_GAP) -> list[Segment]:
  """`segments` with a speaker on each word (or segment without word times), split where the
  talker changes. `annotation` must be exclusive (at most one talker at a time)."""
  who = Speakers(annotation, max_gap)
  out = []
  for seg in segments:
    if not seg.words:
      out.append(dataclasses.replace(seg, speaker=who(seg.start, seg.end)))
      continue
    words = _timed(seg)
    for w in words:
      w.speaker = who(w.start, w.end)
    run = [words[0]]
    for w in words[1:] + [None]:
      if w is not None and w.speaker == run[0].speaker:
        run.append(w)
        continue
      out.append(Segment(run[0].start, run[-1].end, "".join(x.text for x in run).strip(),
                         run, run[0].speaker))
      run = [w]
  return out


def _timed(seg: Segment) -> list[Word]:
  """The segment's words, each with times (a word without them, as WhisperX leaves numerals,
  takes the end of the word before, or the segment's start)."""
  words, last = [], seg.start
  for w in seg.words:
    start = w.start if w.start is not None else last
    end = w.end if w.end is not None else start
    words.append(Word(w.text, start, end))
    last = end
  return words


# --------------------------------------------------------------------------------- writing

def dumps(segments: list[Segment], fmt: str) -> str:
  """Attributed segments as SRT / VTT (`[speaker] text`) or JSON (per-word speakers)."""
  if fmt == "json":
    return json.dumps(dict(segments=[_segment_json(s) for s in segments]), indent=1,
                      ensure_ascii=False) + "\n"
  if fmt not in ("srt", "vtt"):
    raise TranscriptError(f"an attributed transcript is written as srt, vtt or json, not {fmt}")
  import pysubs2
  subs = pysubs2.SSAFile()
  for s in segments:
    text = f"[{s.speaker}] {s.text}" if s.speaker is not None else s.text
    subs.append(pysubs2.SSAEvent(start=int(round(s.start * 1000)),
                                 end=int(round(s.end * 1000)), text=text))
  return subs.to_string(fmt)


def _segment_json(s: Segment) -> dict:
  out = dict(start=round(s.start, 3), end=round(s.end, 3), text=s.text, speaker=s.speaker)
  if s.words is not None:
    out["words"] = [dict(word=w.text, start=round(w.start, 3), end=round(w.end, 3),
                         speaker=w.speaker) for w in s.words]
  return out


def words_of(reference: Annotation, rng: np.random.Generator, *, min_seconds: float = 0.2,
             max_seconds: float = 0.6, gap: float = 0.05) -> list[tuple[float, float, str]]:
  """Words cut from a reference's turns, (start, end, talker) in time order: each turn
  divided into words of `min_seconds`..`max_seconds`, `gap` apart. For measuring attribution
  where the true talker of every word is known."""
  words = []
  for s, _, label in reference.itertracks(yield_label=True):
    t = s.start
    while t + min_seconds <= s.end:
      end = min(s.end, t + rng.uniform(min_seconds, max_seconds))
      words.append((t, end, str(label)))
      t = end + gap
  return sorted(words)


def as_whisper(words, per_segment: int = 8) -> list[Segment]:
  """Timed words grouped as an ASR would print them: segments of `per_segment` consecutive
  words, whoever said them (words named `w0`, `w1`, ...)."""
  segments = []
  for i in range(0, len(words), per_segment):
    group = [Word(f" w{i + j}", a, b) for j, (a, b, *_) in enumerate(words[i:i + per_segment])]
    segments.append(Segment(group[0].start, group[-1].end,
                            "".join(w.text for w in group).strip(), group))
  return segments


def word_accuracy(segments: list[Segment], truth: list[str | None],
                  mapping: dict[str, str] | None = None) -> float:
  """The share of words whose speaker (mapped by `mapping`, hypothesis -> reference label)
  is the true one (`truth`: one label per word, in order)."""
  said = [w.speaker for s in segments for w in (s.words or [])]
  if len(said) != len(truth):
    raise ValueError(f"{len(said)} words attributed, {len(truth)} labels")
  mapping = mapping or {}
  right = sum(mapping.get(s, s) == t for s, t in zip(said, truth))
  return right / max(len(truth), 1)
