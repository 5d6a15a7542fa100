"""The live diarizer's speech gate: the pretrained speech detector (`jaxdiar.vad`) scored on
the stream as it comes, and the frames where it stays under the model's `speech_gate` left
without a speaker. A mixin of `Streamer`, whose attributes it reads (`o`, `sr`, `hop`)."""

import logging

import numpy as np

from jaxdiar.models import vad as vad_lib

log = logging.getLogger(__name__)


class SpeechGate:
  """`Streamer`'s live gate (`live_gate`): the detector's state and probabilities."""

  def _init_gate(self, live_gate: bool, channels: int) -> None:
    # live_gate: the pretrained speech detector (jaxdiar.vad) on the first channel (each
    # channel with `speech_channels="all"`, the highest kept), as the
    # model's `speech_gate` / `speech_pad` settings say offline: a decided frame where it
    # stays under the gate (its highest within the pad, over the chunks already scored) has
    # no speaker. Off by default; where it was measured: docs/inference.md.
    self.detector = None
    if live_gate and self.o.get("speech_classifier") is not None:
      log.warning("live gate: the model's speech_classifier decides offline only; live, the "
                  "detector gates at speech_gate (%s)", self.o.get("speech_gate"))
    if live_gate and self.o.get("speech_gate") is not None:
      if self.sr != vad_lib.SAMPLE_RATE:
        raise ValueError(f"live_gate: the speech detector takes {vad_lib.SAMPLE_RATE} Hz audio")
      scored = channels if self.o.get("speech_channels", "first") == "all" else 1
      self.detector = vad_lib.ChannelDetectors(scored, segment=8)
      if self.o.get("speech_dereverb", 0):
        log.warning("live gate: the speech detector reads the channels as they come (the "
                    "model's speech_dereverb is for offline decoding)")
      self.speech_p = np.zeros(0, np.float32)

  def _detect(self, chunk: np.ndarray) -> np.ndarray:
    """The detector's probabilities of the chunks that `chunk` [C, n] completes (the highest
    over the channels it scores)."""
    return self.detector.push(chunk[:len(self.detector.detectors)]).max(axis=0)

  def _speech(self, a: int, b: int) -> np.ndarray:
    """[b - a] bool: frames [a, b) where the speech detector's highest probability within
    `speech_pad` (over the chunks scored so far) reaches `speech_gate`."""
    fs = self.hop / self.sr
    chunk = ((np.arange(a, b) + 0.5) * fs / vad_lib.FRAME_SECONDS).astype(int)
    radius = int(round(self.o["speech_pad"] / vad_lib.FRAME_SECONDS))
    n = len(self.speech_p)
    lo = np.clip(chunk - radius, 0, n - 1)
    hi = np.clip(chunk + radius, 0, n - 1)
    top = np.array([self.speech_p[x:y + 1].max() for x, y in zip(lo, hi)], np.float32)
    return top >= self.o["speech_gate"]
