"""`decode`: an `Inference` to turns, as named stages: cluster -> stitch -> decide -> split
-> resegment -> merge -> gate (or the speech classifier, `speech`, then the overlap
classifier, `talkers`) -> turns; `diarize` = `infer` + `decode` with a model's
decoding settings (`decoding_settings`)."""

import dataclasses
import logging

import numpy as np
import scipy.ndimage

from jaxdiar.core import resegment as resegment_lib
from jaxdiar.decoding import pieces as pieces_lib
from jaxdiar.decoding import settings as settings_lib
from jaxdiar.decoding import speech as speech_lib
from jaxdiar.decoding import talkers as talkers_lib
from jaxdiar.decoding.cluster import cluster
from jaxdiar.decoding.cluster import voice_joined
from jaxdiar.decoding.frames import binarize_each
from jaxdiar.decoding.frames import fill_and_drop
from jaxdiar.decoding.frames import min_durations
from jaxdiar.decoding.frames import talker_count
from jaxdiar.decoding.frames import top_speakers
from jaxdiar.decoding.frames import turns_of
from jaxdiar.decoding.local import heard_frames
from jaxdiar.decoding.refine import merge_groups
from jaxdiar.decoding.refine import split_by_direction
from jaxdiar.decoding.windows import Inference
from jaxdiar.decoding.windows import InputError
from jaxdiar.decoding.windows import Stages
from jaxdiar.decoding.windows import infer
from jaxdiar.io import rttm
from jaxdiar.models import bundled
from jaxdiar.models import runtime

log = logging.getLogger(__name__)


# The most speakers an estimated count gives unless max_speakers says otherwise (a warning
# says when it is reached): every decoding stage stays bounded on long recordings.
MAX_SPEAKERS = 20


@dataclasses.dataclass
class Result:
  turns: list[rttm.Turn]
  speech: np.ndarray        # [T, K] stitched speaker probabilities (frame rate = sr / hop)
  overlap: np.ndarray       # [T] stitched overlap probability
  frame_seconds: float
  centroids: np.ndarray | None = None   # [K, E] unit mean embedding of each global speaker
  active: np.ndarray | None = None      # [T, K] the decision the turns are read from
  voice: np.ndarray | None = None       # [K, 256] unit mean d-vector of each (where computed)


def gate_speech(active: np.ndarray, score: np.ndarray, speech: np.ndarray, fs: float, *,
                gate: float | None, fill: float | None, pad: float = 0.0) -> np.ndarray:
  """The pretrained speech detector's say over the decision (`jaxdiar.models.vad`; `speech`: its
  probability every 32 ms): frames where it is under `gate` (its highest within `pad` seconds
  either side) have no speaker; frames where it is at least `fill` and no speaker is marked
  get the one with the highest stitched score. None: that half off."""
  p = speech_lib.on_frames(speech, len(active), fs)
  radius = int(round(pad / fs))
  if radius:
    p = scipy.ndimage.maximum_filter1d(p, size=2 * radius + 1, mode="nearest")
  return speech_lib.clear_and_fill(active, score, p, threshold=gate, fill=fill)


def decode(inference: Inference, options: dict, *, num_speakers: int | None = None,
           min_speakers: int | None = None, max_speakers: int | None = None,
           stages: Stages | None = None) -> Result:
  """Cluster the local speakers of every window into global speakers, stitch, binarize.

  `options` are the model's inference settings (meta["inference"]), any of which a caller
  may override. Stitching `count`: the number of talkers at each frame, averaged over the
  covering windows (`count="expected"`: the sum of the local probabilities;
  `"threshold"`: the active local speakers), rounded, at least one where anyone talks and
  two where the overlap head fires, marks that many global speakers (the highest stitched
  scores); `mean`: each global speaker's averaged probability through hysteresis thresholds.
  On an array (frame responses in `inference`), unless the count is given: a speaker whose
  speech comes from two places is split (`split_cos`, `split_seconds`), the spatial
  resegmentation re-decides the frames (`resegment`), and two speakers marked together on
  `merge_overlap` of the frames of one are merged, then the frames decided again. The
  speech detector's gate comes last. `stages`: the time of each (cluster, stitch, split,
  resegment_merge, gate, turns).
  """
  stages = stages or Stages()
  stages.lap("before_decode")
  o = {**DEFAULT_DECODE, **options}
  need = needs(o)
  if o["overlap_classifier"] is not None:
    if o["speech_classifier"] is None:
      raise ValueError("overlap_classifier comes after the speech classifier: set "
                       "speech_classifier too")
    if not speech_lib.reads_net(o["speech_classifier"]):
      raise ValueError("overlap_classifier reads the speech classifier's features with the "
                       "frame levels and the speech network: a speech_classifier of "
                       f"{max(speech_lib.SIZES)} weights")
  inf = inference
  check_counts(num_speakers, min_speakers, max_speakers)
  cap = max_speakers or max(MAX_SPEAKERS, num_speakers or 0, min_speakers or 0)
  fs = inf.hop / inf.sample_rate
  if o["piece_split_cos"] is not None:         # local speakers of two talkers cut in two
    pieces_lib.check(inf.pieces, o, fs)
    inf, _ = pieces_lib.split_locals(inf, o)
  total, (num_windows, tw, _) = inf.total_frames, inf.vad.shape
  vad = inf.vad.astype(np.float32)
  windows, slots, labels, heard = cluster_locals(inf, o, num_speakers=num_speakers,
                                                 min_speakers=min_speakers, max_speakers=cap)
  # What is stitched: each local speaker whole (window, slot, first frame, stop, cluster), or
  # with reassign_classifier its pieces, each in the cluster `pieces.reassign` gives it.
  units = [(w, slot, 0, tw, label) for w, slot, label in zip(windows, slots, labels)]
  if o["reassign_classifier"] is not None and len(labels) and labels.max() > 0:
    pieces_lib.check(inf.pieces, o, fs)
    cands = pieces_lib.candidates(inf, windows, slots, labels, heard[windows, slots], o)
    moved = pieces_lib.reassign(inf, cands, o["reassign_classifier"], o["reassign_threshold"],
                                o["onset"])
    p = inf.pieces
    units = [(p.window[i], p.slot[i], p.start[i], p.stop[i], label)
             for i, label in zip(cands.index, moved)]
  k = int(labels.max()) + 1 if len(labels) else 0
  stages.lap("cluster")
  if num_speakers is None and max_speakers is None and k >= cap:
    log.warning("%s: the estimated speaker count reached the cap of %d (max_speakers); "
                "give --max-speakers to allow more", inf.uri, cap)
  score = np.zeros((total, k))
  cover = np.zeros(total)
  count = np.zeros(total)
  osd = np.zeros(total)
  speech = np.zeros(total)
  for w in range(num_windows):
    f0 = inf.window_frames[w]
    n = max(0, min(tw, total - f0))
    cover[f0:f0 + n] += 1
    osd[f0:f0 + n] += inf.osd[w, :n]
    speech[f0:f0 + n] += 1.0 - np.prod(1.0 - vad[w, :n], axis=1)    # P(anyone talks)
    if o["count"] == "expected":             # expected number of talkers: sum of probabilities
      count[f0:f0 + n] += vad[w, :n].sum(axis=1)
  for w, slot, a, b, label in units:
    f0 = inf.window_frames[w]
    b = max(a, min(b, total - f0))
    score[f0 + a:f0 + b, label] += vad[w, a:b, slot]
    if o["count"] == "threshold":            # active local speakers
      count[f0 + a:f0 + b] += vad[w, a:b, slot] > o["onset"]
  score /= np.maximum(cover, 1)[:, None]
  count /= np.maximum(cover, 1)
  osd /= np.maximum(cover, 1)
  speech /= np.maximum(cover, 1)
  if o["median_frames"] > 1 and k:
    score = scipy.ndimage.median_filter(score, size=(o["median_frames"], 1), mode="nearest")
    count = scipy.ndimage.median_filter(count, size=o["median_frames"], mode="nearest")
    speech = scipy.ndimage.median_filter(speech, size=o["median_frames"], mode="nearest")
  min_speech, min_silence = min_durations(o, fs)
  if o["stitch"] == "count" and k:
    active = top_speakers(score, talker_count(count, speech, osd, k, o))
    for spk in range(k):
      active[:, spk] = fill_and_drop(active[:, spk], min_speech, min_silence)
  else:
    active = binarize_each(score, o, fs)
  # Who each final speaker is: the clusters it comes from (a split speaker's halves share
  # their cluster's embedding).
  parents = [[j] for j in range(k)]
  stages.lap("stitch")
  count_free = num_speakers is None           # a given count is kept as it is
  room = max(0, cap - k)
  split_seconds = count_support(o, inf)["split_seconds"]
  if o["split_cos"] is not None and inf.response is not None and k and count_free and room:
    active, score, parents = split_by_direction(active, score, inf.response, parents,
                                                max_cos=o["split_cos"],
                                                min_frames=int(round(split_seconds / fs)),
                                                max_new=room)
  first = active
  stages.lap("split")

  def resegmented(active, score):
    if not (o["resegment"] and inf.response is not None and active.shape[1] > 1):
      return active
    active = resegment_lib.apply(active, score, osd, inf.response, o["resegment"],
                                 o["resegment_threshold"])
    for spk in range(active.shape[1]):
      active[:, spk] = fill_and_drop(active[:, spk], min_speech, min_silence)
    return active

  active = resegmented(first, score)
  if o["merge_overlap"] is not None and active.shape[1] > 1 and count_free:
    groups = merge_groups(active, o["merge_overlap"], min_groups=min_speakers or 1)
    if len(groups) < active.shape[1]:       # the same speaker twice: merge, decide again
      first = np.stack([first[:, g].any(axis=1) for g in groups], axis=1)
      score = np.stack([score[:, g].max(axis=1) for g in groups], axis=1)
      parents = [sorted({j for i in g for j in parents[i]}) for g in groups]
      active = resegmented(first, score)
  stages.lap("resegment_merge")
  if need["detect_speech"] and active.shape[1]:
    speech = (inf.speech_max if o["speech_channels"] == "all" or o["speech_classifier"]
              is not None else inf.speech)
    if speech is not None and inf.speech_dereverb != o["speech_dereverb"]:
      raise ValueError(f"the speech detector's probabilities were computed with speech_dereverb="
                       f"{inf.speech_dereverb}, the settings ask for {o['speech_dereverb']}: "
                       f"infer(..., speech_dereverb={o['speech_dereverb']})")
    if speech is None:
      raise ValueError("decoding settings speech_gate / speech_fill / speech_classifier need "
                       "the speech detector's probabilities: infer(..., detect_speech=True"
                       + (', speech_channels="all")' if o["speech_channels"] == "all"
                          or o["speech_classifier"] is not None else ")"))
    if o["speech_classifier"] is None:
      active = gate_speech(active, score, speech, fs, gate=o["speech_gate"],
                           fill=o["speech_fill"], pad=o["speech_pad"])
    else:
      if o["speech_gate"] is not None or o["speech_fill"] is not None:
        raise ValueError("speech_classifier decides in place of the speech detector's gate: "
                         "set speech_gate and speech_fill to null")
      levels = speech_lib.reads_levels(o["speech_classifier"])
      net = speech_lib.reads_net(o["speech_classifier"])
      if levels and inf.level is None:
        raise ValueError("this speech_classifier reads the frame levels: infer them again "
                         "(an array model with the spatial stages)")
      if net and inf.speech_net is None:
        raise ValueError("this speech_classifier reads the frame speech network: "
                         "infer(..., speech_net=True)")
      p = speech_lib.probability(speech_lib.features(active, score, osd, inf.speech, speech,
                                                     inf.response, fs,
                                                     inf.level if levels else None,
                                                     inf.speech_net if net else None),
                                 o["speech_classifier"])
      active = speech_lib.decide(active, score, p, threshold=o["speech_classifier_threshold"],
                                 fill=o["speech_classifier_fill"], min_speech=min_speech,
                                 min_silence=min_silence)
      if o["overlap_classifier"] is not None and active.shape[1] > 1:
        evidence = talkers_lib.evidence(inf, active, score, osd, fs)
        active = talkers_lib.decide(active, score,
                                    talkers_lib.probability(evidence, o["overlap_classifier"]),
                                    threshold=o["overlap_classifier_threshold"],
                                    min_speech=min_speech, min_silence=min_silence)
  stages.lap("gate")
  turns = turns_of(active, fs, inf.uri, inf.num_samples / inf.sample_rate)
  centroids = voices = None
  if k:                       # each speaker's embedding (the model's, what enrolment compares;
                              # the d-vectors where computed): its local speakers', by frames heard
    weight = heard[windows, slots].astype(np.float64)
    centroids = _centroids(inf.emb[windows, slots], weight, labels, parents)
    if inf.voice is not None:
      voices = _centroids(inf.voice[windows, slots], weight, labels, parents)
  stages.lap("turns")
  return Result(turns, score, osd, fs, centroids, active, voices)


def cluster_locals(inf: Inference, o: dict, *, num_speakers=None, min_speakers=None,
                   max_speakers=None):
  """(windows, slots, labels, heard) of the local speakers of every window (those heard
  `min_active_frames`): their clusters under the decoding settings `o`, and the frames each
  local speaker of every window is heard ([W, S])."""
  emb = inf.emb
  if o["voice_weight"] > 0:
    if inf.voice is None:
      raise ValueError("decoding setting voice_weight > 0 needs the local speakers' d-vectors: "
                       "infer(..., voice=True)")
    emb = voice_joined(inf.emb, inf.voice, o["voice_weight"])
  fs = inf.hop / inf.sample_rate
  heard = heard_frames(inf, o["onset"])                                    # [W, S] frames
  windows, slots = np.nonzero(heard >= o["min_active_frames"])   # the local speakers
  labels = cluster(emb[windows, slots], windows, num_speakers=num_speakers,
                   min_speakers=min_speakers, max_speakers=max_speakers,
                   threshold=o["cluster_threshold"],
                   max_embeddings=o.get("max_cluster_embeddings", 2000),
                   directions=(inf.direction[windows, slots] if inf.direction is not None
                               and o["spatial_weight"] > 0 else None),
                   spatial_weight=o["spatial_weight"], refine=o["refine"],
                   anchors=heard[windows, slots] * fs >= o["anchor_seconds"],
                   min_cluster_size=o["min_cluster_size"],
                   min_cluster_share=o["min_cluster_share"], heard=heard[windows, slots] * fs,
                   found_seconds=o["found_seconds"],
                   found_total=count_support(o, inf)["found_total"],
                   found_far=o["found_far"], found_far_total=o["found_total"],
                   silhouette_anchors=o["silhouette_anchors"],
                   silhouette_min=o["silhouette_min"])
  return windows, slots, labels, heard


def count_support(o: dict, inf: Inference) -> dict:
  """The seconds the count's rules ask of a new speaker in this recording: `found_total`
  and `split_seconds`, each the larger of its setting and its per-minute setting times the
  recording's length (a long recording has more stray local speakers and more seconds from
  a second direction by chance)."""
  minutes = inf.num_samples / inf.sample_rate / 60.0
  return dict(found_total=max(o["found_total"], o["found_per_minute"] * minutes),
              split_seconds=max(o["split_seconds"], o["split_per_minute"] * minutes))


def _centroids(x: np.ndarray, weight: np.ndarray, labels: np.ndarray, parents: list) -> np.ndarray:
  """[len(parents), E] unit weighted mean of the unit vectors `x` of each group of clusters."""
  x = x.astype(np.float64)
  x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
  out = np.stack([np.sum(x[np.isin(labels, group)] * weight[np.isin(labels, group), None],
                         axis=0) for group in parents])
  return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-9)


# Decoding settings that model files exported before they existed do not carry: the old
# behaviour (mean stitching, no directions, no overlap rule, every local speaker clustered).
DEFAULT_DECODE = settings_lib.legacy_defaults()


def needs(options: dict) -> dict:
  """What `infer` must compute for these decoding settings (its keyword arguments): the
  local speakers' d-vectors, the speech detector's probabilities, the speech network's, the
  local speakers' pieces."""
  classifier = options.get("speech_classifier") is not None   # reads every channel's
  o = {**DEFAULT_DECODE, **options}
  return dict(pieces=((o["onset"], o["piece_gap_seconds"], o["min_active_frames"])
                      if o["reassign_classifier"] is not None
                      or o["piece_split_cos"] is not None else None),
              voice=options.get("voice_weight", 0) > 0,
              detect_speech=(options.get("speech_gate") is not None
                             or options.get("speech_fill") is not None or classifier),
              speech_channels="all" if classifier else options.get("speech_channels", "first"),
              speech_dereverb=options.get("speech_dereverb", 0),
              speech_net=classifier and speech_lib.reads_net(options["speech_classifier"]),
              turned_view=bool(o["turned_view"]))


def needs_of_all(asked: list) -> dict:
  """What `infer` must compute to decode with each of the settings in `asked`."""
  need = [needs(o) for o in asked]
  dereverb = {n["speech_dereverb"] for n in need if n["detect_speech"]}
  if len(dereverb) > 1:
    raise ValueError(f"the settings ask the speech detector for speech_dereverb "
                     f"{sorted(dereverb)}: one inference holds one of them, decode them apart")
  if len({n["turned_view"] for n in need}) > 1:
    raise ValueError("the settings ask for the model's turned view and for none: one inference "
                     "holds one of them, decode them apart")
  pieces = {n["pieces"] for n in need if n["pieces"] is not None}
  if len(pieces) > 1:
    raise ValueError(f"the settings cut the local speakers into pieces in several ways "
                     f"{sorted(pieces)}: one inference holds one of them, decode them apart")
  return dict(pieces=pieces.pop() if pieces else None,
              voice=any(n["voice"] for n in need),
              detect_speech=any(n["detect_speech"] for n in need),
              speech_channels="all" if any(n["detect_speech"] and n["speech_channels"] == "all"
                                           for n in need) else "first",
              speech_dereverb=dereverb.pop() if dereverb else 0,
              speech_net=any(n["speech_net"] for n in need),
              turned_view=bool(need) and need[0]["turned_view"])


def check_counts(num_speakers=None, min_speakers=None, max_speakers=None) -> None:
  """Speaker counts a decoding can honour: each at least 1, min <= num <= max where given.
  Raises InputError naming the one at fault (before any audio is read)."""
  given = dict(num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers)
  for name, value in given.items():
    if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
      raise InputError(f"{name} must be a whole number of at least 1, not {value!r}")
  if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
    raise InputError(f"min_speakers ({min_speakers}) is above max_speakers ({max_speakers})")
  if num_speakers is not None and not ((min_speakers or 1) <= num_speakers
                                       <= (max_speakers or num_speakers)):
    raise InputError(f"num_speakers ({num_speakers}) is outside min_speakers..max_speakers "
                     f"({min_speakers}..{max_speakers})")


def decoding_settings(model: runtime.ExportedModel, options: dict, mics=None) -> dict:
  """The decoding settings a run uses: the model's, overridden by `options` (validated); a
  one-channel model given the recording's geometry (`mics`) adds the spatial stages'
  settings for any array between (`bundled.any_array_settings`)."""
  settings_lib.validate(options)
  spatial = (bundled.any_array_settings() if mics is not None and not model.needs_array
             else {})
  return {**DEFAULT_DECODE, **model.meta["inference"], **spatial, **options}


def infer_options(o: dict) -> dict:
  """`infer`'s keyword arguments for the decoding settings `o`: the directions where a
  spatial stage reads them, the window step, the d-vectors and speech detector if needed."""
  return dict(spatial=(o["spatial_weight"] > 0 or bool(o["resegment"])
                       or o["split_cos"] is not None),
              step_seconds=o["step_seconds"], **needs(o))


def diarize(path, model: runtime.ExportedModel, *, uri: str | None = None,
            num_speakers: int | None = None, min_speakers: int | None = None,
            max_speakers: int | None = None, replicate_channels: bool = False,
            progress: bool = True, channel: int | None = None, mics=None,
            **options) -> Result:
  """Diarize one recording (`infer` then `decode`; `options` override the model's inference
  settings; `mics`: the recording's microphone positions, `jaxdiar.core.geometry`). Raises
  InputError / AudioError with a clear message."""
  check_counts(num_speakers, min_speakers, max_speakers)
  o = decoding_settings(model, options, mics)
  inference = infer(path, model, uri=uri, replicate_channels=replicate_channels,
                    progress=progress, channel=channel, mics=mics, **infer_options(o))
  return decode(inference, o, num_speakers=num_speakers, min_speakers=min_speakers,
                max_speakers=max_speakers)
