"""The inference settings, declared once: type, defaults, valid range, meaning.

Each `Setting` carries two defaults where they differ: `default`, what a new config starts
from (`configs/default.py`'s inference block is built from it), and `legacy`, what a model
file *without* the key decodes with (files exported before the setting existed decode as
they always did; `diarize.DEFAULT_DECODE` is built from it). `validate` refuses an unknown
key or an out-of-range value, naming it; `export --set`, `stream --set`, the Python API and
`configs/default.py` all go through this table. Where a value was chosen is said in the
README / benchmarks/results, not here.
"""

import dataclasses
import json
from typing import Any

import ml_collections

_ALWAYS = object()          # in every exported file since the format's first version


@dataclasses.dataclass(frozen=True)
class Setting:
  name: str
  default: Any                       # a new config's value
  doc: str
  kind: type = float                 # float, int, str, bool or tuple
  legacy: Any = _ALWAYS              # a file without the key decodes with this
  low: float | None = None           # valid range (numbers), inclusive
  high: float | None = None
  choices: tuple = ()                # valid values (str)
  optional: bool = False             # None allowed (the stage off)
  search: tuple | None = None        # Optuna's range (bench_accuracy --search), narrower

  def check(self, value) -> None:
    if value is None:
      if self.optional:
        return
      raise ValueError(f"setting {self.name}: None is not allowed (it takes a {self.kind.__name__})")
    if self.choices:
      if value not in self.choices:
        raise ValueError(f"setting {self.name}: {value!r} is not one of {', '.join(self.choices)}")
      return
    if self.kind is bool:
      if not isinstance(value, bool):
        raise ValueError(f"setting {self.name}: expected true or false, got {value!r}")
      return
    if self.kind is tuple:
      if not isinstance(value, (list, tuple)):
        raise ValueError(f"setting {self.name}: expected a list of numbers, got {value!r}")
      return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ValueError(f"setting {self.name}: expected a number, got {value!r}")
    if self.kind is int and int(value) != value:
      raise ValueError(f"setting {self.name}: expected a whole number, got {value!r}")
    if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
      raise ValueError(f"setting {self.name}: {value!r} is outside [{self.low}, {self.high}]")


S = Setting
INFERENCE = (
    S("window_seconds", 8.0, "Window length, seconds (a model's training windows).", low=0.5),
    S("step_seconds", 4.0, "Window hop, seconds.", low=0.1),
    S("batch_windows", 4, "Windows per model call.", int, low=1),
    S("stream_block_frames", 8, "Streaming block, in hops (8 x 16 ms = 128 ms).", int, low=1),
    S("onset", 0.5, "Speech starts when the probability rises above this...", low=0, high=1),
    S("offset", 0.4, "...and ends when it falls below this (hysteresis).", low=0, high=1),
    S("median_frames", 11, "Median filter on the stitched probabilities (frames).", int, low=1),
    S("min_speech_seconds", 0.2, "Shorter speech segments are dropped.", low=0),
    S("min_silence_seconds", 0.2, "Shorter gaps inside a speaker's speech are filled.", low=0),
    S("min_active_frames", 10, "A local speaker counts in a window if active this long.", int,
      low=1),
    S("cluster_threshold", 0.45, "Cosine distance cut when the number of speakers is unknown.",
      low=0, high=2, search=(0.3, 0.7)),
    S("spatial_weight", 0.3, "Weight of the talker direction (SRP-PHAT where a local speaker "
      "talks alone) in the clustering distance; 0 = embeddings only. Arrays only.", legacy=0.0,
      low=0, high=1, search=(0.0, 0.6)),
    S("anchor_seconds", 2.0, "Only local speakers heard this long are clustered; the others "
      "join the nearest cluster.", legacy=0.0, low=0, search=(0.0, 4.0)),
    S("refine", 0, "Rounds of reassigning every local speaker to the centroids.", int, legacy=0,
      low=0),
    S("stitch", "count", "'count': the expected number of talkers at each frame takes the "
      "highest-scoring global speakers; 'mean': each speaker's averaged probability through the "
      "thresholds.", str, legacy="mean", choices=("count", "mean")),
    S("count", "expected", "'expected' (sum of probabilities) or 'threshold' (actives).", str,
      legacy="expected", choices=("expected", "threshold")),
    S("osd_threshold", 0.6, "Where the overlap head is above this, at least two talkers; 1.0 "
      "disables.", legacy=1.0, low=0, high=1, search=(0.4, 1.0)),
    S("max_cluster_embeddings", 2000, "Beyond this many local speakers (about 2 h), cluster an "
      "even subset and assign the rest: bounded memory for any length.", int, low=2),
    S("resegment", None, "Spatial resegmentation weights (jaxdiar.core.resegment; arrays only), "
      "fitted per model: bench_accuracy --fit-resegment SEED.", tuple, legacy=None,
      optional=True),
    S("resegment_threshold", 0.6, "A speaker is marked where P(talks) is above this.",
      legacy=0.6, low=0, high=1),
    S("split_cos", None, "Split a speaker whose speech comes from two directions whose mean "
      "responses have a cosine under this (arrays only; None: never).", legacy=None, low=-1,
      high=1, optional=True),
    S("split_seconds", 15.0, "... each direction heard alone at least this long.", legacy=15.0,
      low=0),
    S("split_per_minute", 0.0, "... or, if more, this many seconds per minute of the "
      "recording.", legacy=0.0, low=0),
    S("merge_overlap", None, "Merge two speakers marked together on this share of the "
      "less-heard one's frames (None: never).", legacy=None, low=0, high=1, optional=True),
    S("voice_weight", 0.0, "Weight of the voice encoder's d-vectors in the clustering (1: "
      "d-vectors alone; jaxdiar.models.voice).", legacy=0.0, low=0, high=1),
    S("min_cluster_size", 0, "Unless the count is given, clusters of fewer anchors are "
      "dissolved.", int, legacy=0, low=0),
    S("speech_gate", None, "No speaker where the pretrained speech detector (jaxdiar.vad) stays "
      "under this within speech_pad (None: off).", legacy=None, low=0, high=1, optional=True),
    S("speech_fill", None, "Where the detector is at least this and nobody is marked, the "
      "likeliest speaker is (None: off).", legacy=None, low=0, high=1, optional=True),
    S("speech_pad", 0.0, "Seconds either side over which the detector's highest value counts.",
      legacy=0.0, low=0),
    S("speech_channels", "first", "The detector's input: 'first' (the channel the model reads) "
      "or 'all' (each channel of the recording, the highest probability kept).", str,
      legacy="first", choices=("first", "all")),
    S("speech_dereverb", 0, "Channels dereverberated together by WPE (jaxdiar.core.dereverb; spread "
      "evenly, the read channel first) before the speech detector, which then reads them: "
      "'all' means these (0: off).", int, legacy=0, low=0),
    S("speech_classifier", None, "Logistic weights of the frame speech classifier "
      "(jaxdiar.decoding.speech: the detector on every channel, the stitched scores, the "
      "array's response), which then decides where anyone talks in place of speech_gate / "
      "speech_fill (None: off).", tuple, legacy=None, optional=True),
    S("speech_classifier_threshold", 0.5, "With speech_classifier: no speaker where its "
      "P(speech) is under this.", legacy=0.5, low=0, high=1),
    S("speech_classifier_fill", None, "With speech_classifier: where its P(speech) is at least "
      "this and nobody is marked, the likeliest speaker is (None: off).", legacy=None, low=0,
      high=1, optional=True),
    S("overlap_classifier", None, "Logistic weights of the frame overlap classifier "
      "(jaxdiar.decoding.talkers: the speech classifier's evidence, the windows' local "
      "talkers, the stitched scores), which then keeps one speaker where two or more are "
      "marked and it doubts the overlap (None: off; needs the speech classifier with the "
      "frame levels and the speech network).", tuple, legacy=None, optional=True),
    S("overlap_classifier_threshold", 0.3, "With overlap_classifier: one speaker where its "
      "P(two or more talk) is under this.", legacy=0.3, low=0, high=1),
    S("found_seconds", None, "Local speakers that are not anchors, heard this long and far "
      "from every cluster, may found one (short talkers; None: off).", legacy=None, low=0,
      optional=True),
    S("found_total", 2.0, "... when such a group is heard this long in all.", legacy=2.0, low=0),
    S("found_per_minute", 0.0, "... or, if more, this many seconds per minute of the "
      "recording (a long recording has more stray local speakers to found with).", legacy=0.0,
      low=0),
    S("found_far", None, "... but a group farther than this (cosine distance) from every "
      "cluster founds at found_total alone, whatever the length (a distinct voice; None: "
      "off).", legacy=None, low=0, high=2, optional=True),
    S("silhouette_anchors", None, "Unless the count is given, a recording with at least this "
      "many anchors (a long one) has its tree cut where its big clusters' silhouette is the "
      "highest, from cluster_threshold's count up (None: the threshold's cut alone).", int,
      legacy=None, low=3, optional=True),
    S("silhouette_min", 0.2, "The silhouette a finer cut needs where cluster_threshold's has "
      "fewer than two big clusters.", legacy=0.2, low=-1, high=1),
    S("min_cluster_share", 0.0, "Unless the count is given, clusters holding fewer than this "
      "share of all anchors are dissolved (min_cluster_size scaled to the recording).",
      legacy=0.0, low=0, high=1),
    S("reassign_classifier", None, "Logistic weights of the pieces' reassignment "
      "(jaxdiar.decoding.pieces): after the clustering, a local speaker's piece between two "
      "pauses moves to the cluster it is nearest to where this classifier says so (None: "
      "off; needs a model file that gives its frame embeddings).", tuple, legacy=None,
      optional=True),
    S("reassign_threshold", 0.5, "With reassign_classifier: a piece moves where its "
      "probability is above this.", legacy=0.5, low=0, high=1),
    S("piece_gap_seconds", 0.16, "With reassign_classifier or piece_split_cos: the pauses, "
      "seconds, that cut a local speaker into pieces.", legacy=0.16, low=0),
    S("piece_split_cos", None, "Before the clustering, a local speaker whose pieces form two "
      "groups whose centres' cosine is under this is cut in two (jaxdiar.decoding.pieces; "
      "None: off; needs the pieces, as reassign_classifier).", legacy=None, low=-1, high=1,
      optional=True),
    S("piece_split_seconds", 1.0, "With piece_split_cos: each group heard this long.",
      legacy=1.0, low=0),
    S("turned_view", False, "A model of a uniform circular array also runs on the channels "
      "turned by one microphone, its local speakers matched to the first run's and the two "
      "views' outputs averaged (jaxdiar.decoding.views; the model runs twice).", bool,
      legacy=False),
)
BY_NAME = {s.name: s for s in INFERENCE}
# The settings a request to the HTTP service may change (`settings={...}`): thresholds and
# durations of the decision and the count, not the window geometry nor the fitted weights.
SERVICE = ("onset", "offset", "median_frames", "min_speech_seconds", "min_silence_seconds",
           "cluster_threshold", "osd_threshold", "speech_gate", "speech_pad",
           "resegment_threshold", "merge_overlap", "speech_classifier_threshold",
           "overlap_classifier_threshold")


def legacy_defaults() -> dict:
  """What a model file without a key decodes with (the settings added after the format)."""
  return {s.name: s.legacy for s in INFERENCE if s.legacy is not _ALWAYS}


def search_space() -> dict:
  """{name: (low, high)} of the settings Optuna searches (bench_accuracy --search)."""
  return {s.name: s.search for s in INFERENCE if s.search}


def validate(values: dict, extra=(), what: str = "decoding setting") -> dict:
  """`values` checked against the table (`extra`: more names the caller takes itself, e.g.
  the live stream's own, `what` they are called); raises ValueError naming an unknown key or
  a bad value."""
  unknown = sorted(set(values) - set(BY_NAME) - set(extra))
  if unknown:
    raise ValueError(f"unknown {what}(s) {', '.join(unknown)}; known: "
                     f"{', '.join(sorted(set(BY_NAME) | set(extra)))}")
  for key, value in values.items():
    if key in BY_NAME:
      BY_NAME[key].check(value)
  return values


def parse_items(items, extra=(), what: str = "decoding setting") -> dict:
  """Command-line `--set KEY=JSON` items -> {key: value}, each checked by `validate`;
  raises ValueError naming the item at fault."""
  out = {}
  for item in items:
    key, sep, value = item.partition("=")
    try:
      out[key] = json.loads(value)
    except json.JSONDecodeError:
      raise ValueError(f"--set {item}: the value is not JSON" if sep else
                       f"--set {item}: expected KEY=JSON") from None
    try:
      validate({key: out[key]}, extra=extra, what=what)
    except ValueError as e:
      raise ValueError(f"--set {item}: {e}") from None
  return out


def config_block() -> ml_collections.ConfigDict:
  """`configs/default.py`'s inference block: every setting at its new-config default (None
  ones as typed references, so that a command-line override can set them)."""
  block = ml_collections.ConfigDict()
  for s in INFERENCE:
    if s.default is None:
      block[s.name] = ml_collections.FieldReference(None, field_type=s.kind)
    else:
      block[s.name] = s.default
  return block
