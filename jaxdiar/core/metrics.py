"""Frame-level diarization metrics accumulated over windows (host side, numpy).

Frame DER under the PIT mapping of each window: missed = max(n_ref - n_hyp, 0),
false alarm = max(n_hyp - n_ref, 0), confusion = min(n_ref, n_hyp) - n_correct, all over
the total reference speaker-frames. RTTM-level scoring of whole recordings is in
`jaxdiar.evaluate` (pyannote.metrics).
"""

import numpy as np


class FrameMetrics:
  """Counts: DER components, per-speaker TP/FP/FN (by global id), OSD TP/FP/FN."""

  def __init__(self, num_ids: int):
    self.num_ids = num_ids
    self.counts = np.zeros(7, np.float64)    # miss, fa, conf, ref, osd tp, fp, fn
    self.speaker = np.zeros((num_ids, 3), np.float64)   # tp, fp, fn per identity

  def update(self, vad_prob, activity, perm, speaker_ids, osd_prob, overlap,
             vad_threshold: float = 0.5, osd_threshold: float = 0.5):
    """vad_prob [B, T, S], activity [B, T, S], perm [B, S], speaker_ids [B, S], osd [B, T]."""
    hyp = vad_prob > vad_threshold
    ref = np.take_along_axis(activity.astype(bool), perm[:, None, :], axis=2)  # output order
    ids = np.take_along_axis(speaker_ids, perm, axis=1)
    n_ref, n_hyp = ref.sum(-1), hyp.sum(-1)
    correct = (hyp & ref).sum(-1)
    self.counts[0] += np.maximum(n_ref - n_hyp, 0).sum()
    self.counts[1] += np.maximum(n_hyp - n_ref, 0).sum()
    self.counts[2] += (np.minimum(n_ref, n_hyp) - correct).sum()
    self.counts[3] += n_ref.sum()
    osd_hyp, osd_ref = osd_prob > osd_threshold, overlap.astype(bool)
    self.counts[4] += (osd_hyp & osd_ref).sum()
    self.counts[5] += (osd_hyp & ~osd_ref).sum()
    self.counts[6] += (~osd_hyp & osd_ref).sum()
    tp, fp, fn = ((hyp & ref).sum(1), (hyp & ~ref).sum(1), (~hyp & ref).sum(1))  # [B, S]
    valid = (ids >= 0) & (ids < self.num_ids)
    for stat, values in enumerate((tp, fp, fn)):
      np.add.at(self.speaker[:, stat], ids[valid], values[valid])

  def merge(self, vector: np.ndarray):
    """Add the counts of another accumulator given as `as_vector()`."""
    self.counts += vector[:7]
    self.speaker += vector[7:].reshape(self.num_ids, 3)

  def as_vector(self) -> np.ndarray:
    return np.concatenate([self.counts, self.speaker.reshape(-1)])

  def result(self) -> dict:
    miss, fa, conf, total, otp, ofp, ofn = self.counts
    total = max(total, 1.0)
    out = dict(der=(miss + fa + conf) / total, missed=miss / total, false_alarm=fa / total,
               confusion=conf / total, osd_precision=otp / max(otp + ofp, 1.0),
               osd_recall=otp / max(otp + ofn, 1.0))
    seen = self.speaker.sum(1) > 0
    if seen.any():
      tp, fp, fn = self.speaker[seen].T
      precision = tp / np.maximum(tp + fp, 1)
      recall = tp / np.maximum(tp + fn, 1)
      f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-9)
      out.update(speaker_precision=float(precision.mean()), speaker_recall=float(recall.mean()),
                 speaker_f1=float(f1.mean()))
    return {k: float(v) for k, v in out.items()}
