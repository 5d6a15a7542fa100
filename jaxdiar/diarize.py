"""python -m jaxdiar.diarize INPUT... --model model.jaxdiar --out OUT.rttm

Long-recording diarization with an exported model: audio read in blocks (memory does not
grow with the length), sliding windows, per-window VAD/OSD and local-speaker embeddings,
clustering across windows into global speakers, stitching, post-processing, RTTM out.
INPUT is a (multi-channel) audio file or an AMI-style folder of per-channel files. Uses
only `jaxdiar.runtime` (no flax, no model code).
"""

import argparse
import dataclasses
import pathlib
import sys

import numpy as np
import scipy.cluster.hierarchy
import scipy.ndimage
import scipy.optimize
import scipy.spatial.distance
import tqdm

from jaxdiar import rttm
from jaxdiar import runtime
from jaxdiar.data import audio as audio_lib


class InputError(ValueError):
  """A recording the pipeline cannot diarize (message says why)."""


@dataclasses.dataclass
class Result:
  turns: list[rttm.Turn]
  speech: np.ndarray        # [T, K] stitched speaker probabilities (frame rate = sr / hop)
  overlap: np.ndarray       # [T] stitched overlap probability
  frame_seconds: float


def _window_starts(num_samples: int, window: int, step: int) -> list[int]:
  if num_samples <= window:
    return [0]
  starts = list(range(0, num_samples - window + 1, step))
  if starts[-1] + window < num_samples:
    starts.append(num_samples - window)
  return starts


def _read_block(path, rate: int, target_rate: int, start: int, length: int) -> np.ndarray:
  """[C, length] at target_rate from sample `start` (target-rate samples), zero-padded."""
  if rate == target_rate:
    block = audio_lib.read(path, target_rate, start, start + length)
  else:
    s = int(start * rate / target_rate)
    block = audio_lib.read(path, target_rate, s, s + int(np.ceil(length * rate / target_rate)))
  if block.shape[1] < length:
    block = np.pad(block, ((0, 0), (0, length - block.shape[1])))
  return block[:, :length]


def cluster(embeddings: np.ndarray, window_index: np.ndarray, *, num_speakers=None,
            min_speakers=1, max_speakers=None, threshold: float = 0.6,
            max_embeddings: int = 2000) -> np.ndarray:
  """Agglomerative (average-link, cosine) clustering of local-speaker embeddings.

  Two local speakers of one window are different people: their distance is set to the
  maximum so they merge last. Returns a cluster label per embedding (0..K-1).

  Average linkage needs the n x n distances; beyond `max_embeddings` (about 2 h of audio
  at the default window step) an evenly spread subset of that size is clustered and every
  other embedding joins the nearest cluster centroid, the local speakers of one window
  going to distinct clusters (Hungarian assignment per window). Memory stays bounded by
  the subset (32 MB of distances at 2000), whatever the recording's length.
  """
  n = len(embeddings)
  if n <= 1:
    return np.zeros(n, int)
  x = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-9)
  options = dict(num_speakers=num_speakers, min_speakers=min_speakers,
                 max_speakers=max_speakers, threshold=threshold)
  if n <= max_embeddings:
    return _average_link(x, window_index, **options)
  # An even subset is clustered; every other embedding joins a centroid.
  picked = np.unique(np.linspace(0, n - 1, max_embeddings).round().astype(int))
  labels = np.full(n, -1)
  labels[picked] = _average_link(x[picked], window_index[picked], **options)
  ids = np.unique(labels[picked])
  centroids = np.stack([x[picked][labels[picked] == k].mean(axis=0) for k in ids])
  centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9
  by_window = np.argsort(window_index, kind="stable")
  for group in np.split(by_window, np.flatnonzero(np.diff(window_index[by_window])) + 1):
    rest = group[labels[group] < 0]
    if not len(rest):
      continue
    cost = 1.0 - x[rest] @ centroids.T                      # [locals of one window, K]
    taken = labels[group][labels[group] >= 0]               # clusters already in this window
    cost[:, np.searchsorted(ids, taken)] += 4.0
    if len(rest) <= len(centroids):
      rows, cols = scipy.optimize.linear_sum_assignment(cost)
      labels[rest[rows]] = ids[cols]
    else:                                                   # more locals than clusters
      labels[rest] = ids[np.argmin(cost, axis=1)]
  return labels


def _average_link(x, window_index, *, num_speakers, min_speakers, max_speakers,
                  threshold) -> np.ndarray:
  """`cluster` of unit embeddings by average linkage over all n x n distances."""
  n = len(x)
  if n <= 1:
    return np.zeros(n, int)
  dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
  dist[window_index[:, None] == window_index[None, :]] = 2.0
  np.fill_diagonal(dist, 0.0)
  tree = scipy.cluster.hierarchy.linkage(scipy.spatial.distance.squareform(dist, checks=False),
                                         method="average")
  del dist
  if num_speakers:
    k = min(num_speakers, n)
  else:
    k = len(np.unique(scipy.cluster.hierarchy.fcluster(tree, threshold, "distance")))
    k = max(min_speakers or 1, min(k, max_speakers or n))
    k = min(k, n)
  return scipy.cluster.hierarchy.fcluster(tree, k, "maxclust") - 1


def binarize(prob: np.ndarray, onset: float, offset: float, min_speech: int,
             min_silence: int) -> np.ndarray:
  """Hysteresis thresholds, then fill short gaps and drop short segments. [T] -> [T] bool."""
  active = np.zeros(len(prob), bool)
  on = False
  for t, p in enumerate(prob):
    on = p > onset if not on else p >= offset
    active[t] = on
  segments = _runs(active)
  for (s0, e0), (s1, _) in zip(segments, segments[1:]):
    if s1 - e0 < min_silence:
      active[e0:s1] = True
  for s, e in _runs(active):
    if e - s < min_speech:
      active[s:e] = False
  return active


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
  edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
  return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def diarize(path, model: runtime.ExportedModel, *, uri: str | None = None,
            num_speakers: int | None = None, min_speakers: int | None = None,
            max_speakers: int | None = None, replicate_channels: bool = False,
            progress: bool = True) -> Result:
  """Diarize one recording. Raises InputError / AudioError with a clear message."""
  meta, inf = model.meta, model.meta["inference"]
  sr, hop = model.sample_rate, model.hop
  path = pathlib.Path(path)
  uri = uri or path.stem
  rate, channels, frames = audio_lib.info(path)
  if frames == 0:
    raise InputError(f"{path}: empty recording")
  tile = 1
  if channels != model.num_channels:
    if meta["feature_kind"] != "lps" and not (replicate_channels and channels == 1):
      raise InputError(f"{path}: {channels} channel(s), the model expects "
                       f"{model.num_channels} (its '{meta['feature_kind']}' features need the "
                       "array; a mono file can be run with --replicate-channels)")
    tile = model.num_channels if channels == 1 else 1
  num_samples = int(round(frames * sr / rate))
  window = int(round(inf["window_seconds"] * sr))
  step = int(round(inf["step_seconds"] * sr))
  window = min(window, max(num_samples, meta["n_fft"]))
  starts = _window_starts(num_samples, window, step)
  frames_per_window = 1 + window // hop
  total_frames = 1 + num_samples // hop
  batch = inf["batch_windows"]

  locals_: list[tuple[int, int, np.ndarray, np.ndarray]] = []   # window, start frame, probs, emb
  osd_sum = np.zeros(total_frames)
  cover = np.zeros(total_frames)
  peak = 0.0
  bar = tqdm.tqdm(total=len(starts), desc=f"diarize {uri}", unit="window", disable=not progress)
  for b0 in range(0, len(starts), batch):
    group = starts[b0:b0 + batch]
    blocks = [_read_block(path, rate, sr, s, window) for s in group]
    blocks = [np.tile(x, (tile, 1)) if tile > 1 else x for x in blocks]
    audio = np.stack(blocks + [np.zeros_like(blocks[0])] * (batch - len(blocks)))
    peak = max(peak, float(np.abs(audio).max()))
    out = {k: np.asarray(v) for k, v in model(audio).items()}
    for j, s in enumerate(group):
      f0 = s // hop
      f1 = min(f0 + frames_per_window, total_frames)
      osd_sum[f0:f1] += out["osd"][j, :f1 - f0]
      cover[f0:f1] += 1
      for spk in range(out["vad"].shape[-1]):
        prob = out["vad"][j, :f1 - f0, spk]
        if np.sum(prob > inf["onset"]) >= inf["min_active_frames"]:
          # Copies: a view would keep the whole batch's output buffers alive.
          locals_.append((b0 + j, f0, prob.astype(np.float32),
                          out["spk_emb"][j, spk].astype(np.float32)))
    bar.update(len(group))
  bar.close()
  if peak == 0.0:
    raise InputError(f"{path}: the audio is all zeros")

  labels = cluster(np.array([e for *_, e in locals_]).reshape(len(locals_), -1),
                   np.array([w for w, *_ in locals_], int), num_speakers=num_speakers,
                   min_speakers=min_speakers, max_speakers=max_speakers,
                   threshold=inf["cluster_threshold"],
                   max_embeddings=inf.get("max_cluster_embeddings", 2000))
  k = int(labels.max()) + 1 if len(labels) else 0
  speech = np.zeros((total_frames, k))
  for (w, f0, prob, _), label in zip(locals_, labels):
    speech[f0:f0 + len(prob), label] += prob
  speech /= np.maximum(cover, 1)[:, None]
  overlap = osd_sum / np.maximum(cover, 1)
  if inf["median_frames"] > 1 and k:
    speech = scipy.ndimage.median_filter(speech, size=(inf["median_frames"], 1), mode="nearest")
  fs = hop / sr
  turns = []
  for spk in range(k):
    active = binarize(speech[:, spk], inf["onset"], inf["offset"],
                      int(round(inf["min_speech_seconds"] / fs)),
                      int(round(inf["min_silence_seconds"] / fs)))
    for s, e in _runs(active):
      turns.append(rttm.Turn(uri, s * fs, min(e * fs, num_samples / sr), f"spk{spk:02d}"))
  return Result(sorted(turns), speech, overlap, fs)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.diarize", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("inputs", nargs="+", help="audio files or per-channel folders")
  p.add_argument("--model", required=True, help="a .jaxdiar file (python -m jaxdiar.export)")
  p.add_argument("--out", required=True, help="RTTM to write (all inputs)")
  p.add_argument("--num-speakers", type=int, default=None)
  p.add_argument("--min-speakers", type=int, default=None)
  p.add_argument("--max-speakers", type=int, default=None)
  p.add_argument("--replicate-channels", action="store_true",
                 help="run a mono recording through a multi-channel model by copying it to "
                      "every channel (the spatial features then carry nothing)")
  p.add_argument("--plot", default=None, help="PNG of the first input's result")
  p.add_argument("--ref", default=None, help="reference RTTM for --plot")
  args = p.parse_args(argv)
  try:
    model = runtime.load(args.model)
  except runtime.ModelFileError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  turns, results = [], []
  for path in args.inputs:
    try:
      result = diarize(path, model, num_speakers=args.num_speakers,
                       min_speakers=args.min_speakers, max_speakers=args.max_speakers,
                       replicate_channels=args.replicate_channels)
    except (InputError, audio_lib.AudioError, FileNotFoundError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    turns += result.turns
    results.append((path, result))
  rttm.write_rttm(args.out, turns)     # written once, at the end, then renamed
  print(f"wrote {len(turns)} turns for {len(args.inputs)} recording(s) to {args.out}")
  if args.plot:
    from jaxdiar import plots   # matplotlib only when asked
    path, result = results[0]
    ref = rttm.read_rttm(args.ref).get(pathlib.Path(path).stem, []) if args.ref else None
    plots.diarization_figure(path, result, model.sample_rate, ref, args.plot)
  return 0


if __name__ == "__main__":
  sys.exit(main())
