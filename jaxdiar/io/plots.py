"""Figures: spectrogram + reference/hypothesis activity + OSD curve, speaker confusion,
training curves. matplotlib (Agg backend), PNG out."""

import json
import pathlib

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxdiar.data import audio as audio_lib  # noqa: E402


def _activity(ax, turns, title, end):
  speakers = sorted({t.speaker for t in turns})
  for row, spk in enumerate(speakers):
    for t in turns:
      if t.speaker == spk:
        ax.barh(row, t.offset - t.onset, left=t.onset, height=0.7, color=f"C{row % 10}")
  ax.set_yticks(range(len(speakers)), speakers, fontsize=7)
  ax.set_xlim(0, end)
  ax.set_ylabel(title)


def diarization_figure(path, result, sample_rate: int, ref_turns, out, max_seconds=600.0):
  """Spectrogram (first channel), reference and hypothesis turns, overlap probability."""
  rate, _, frames = audio_lib.info(path)
  seconds = min(frames / rate, max_seconds)
  x = audio_lib.read(path, sample_rate, 0, int(seconds * rate))[0]
  rows = 4 if ref_turns is not None else 3
  fig, axes = plt.subplots(rows, 1, figsize=(12, 1.6 * rows + 1), sharex=True)
  axes[0].specgram(x + 1e-9, NFFT=512, Fs=sample_rate, noverlap=256, cmap="magma")
  axes[0].set_ylabel("Hz")
  i = 1
  if ref_turns is not None:
    _activity(axes[i], ref_turns, "reference", seconds)
    i += 1
  _activity(axes[i], result.turns, "hypothesis", seconds)
  t = np.arange(len(result.overlap)) * result.frame_seconds
  axes[i + 1].plot(t, result.overlap, lw=0.8)
  axes[i + 1].set_ylim(0, 1)
  axes[i + 1].set_ylabel("P(overlap)")
  axes[i + 1].set_xlabel("seconds")
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  plt.close(fig)


def confusion_figure(ref: dict, hyp: dict, uem, out, step: float = 0.01):
  """Seconds of each (reference, hypothesis) speaker pair, all files, on a 10 ms grid."""
  ref_labels = sorted({f"{u}/{t.speaker}" for u in ref for t in ref[u]})
  hyp_labels = sorted({f"{u}/{t.speaker}" for u in hyp for t in hyp[u]}) + ["(none)"]
  matrix = np.zeros((len(ref_labels) + 1, len(hyp_labels)))
  for uri in ref:
    end = max([t.offset for t in ref[uri]] + [t.offset for t in hyp.get(uri, [])])
    n = int(end / step) + 1
    def grid(turns, labels):
      g = np.zeros((n, len(labels)), bool)
      for t in turns:
        g[int(t.onset / step):int(t.offset / step), labels.index(f"{uri}/{t.speaker}")] = True
      return g
    r, h = grid(ref[uri], ref_labels), grid(hyp.get(uri, []), hyp_labels)
    h[:, -1] = ~h[:, :-1].any(axis=1)
    matrix[:-1] += r.T.astype(float) @ h.astype(float) * step
  fig, ax = plt.subplots(figsize=(1 + 0.5 * len(hyp_labels), 1 + 0.4 * len(ref_labels)))
  im = ax.imshow(matrix[:-1], cmap="Blues", aspect="auto")
  ax.set_xticks(range(len(hyp_labels)), hyp_labels, rotation=90, fontsize=7)
  ax.set_yticks(range(len(ref_labels)), ref_labels, fontsize=7)
  ax.set_xlabel("hypothesis")
  ax.set_ylabel("reference")
  fig.colorbar(im, label="seconds")
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  plt.close(fig)
  return matrix


def training_curves(workdir, out):
  """Loss terms and dev DER against steps, from the workdir's metrics.jsonl."""
  rows = [json.loads(l) for l in pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines()]
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
  for key in sorted({k for r in rows for k in r if k.startswith("loss/")}):
    pts = [(r["step"], r[key]) for r in rows if key in r]
    ax1.plot(*zip(*pts), label=key[5:])
  ax1.set_xlabel("step")
  ax1.set_yscale("log")
  ax1.legend(fontsize=7)
  for key in ("dev/der", "dev/missed", "dev/false_alarm", "dev/confusion"):
    pts = [(r["step"], r[key]) for r in rows if key in r]
    if pts:
      ax2.plot(*zip(*pts), marker="o", label=key[4:])
  ax2.set_xlabel("step")
  ax2.set_ylabel("frame error rate")
  ax2.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  plt.close(fig)
