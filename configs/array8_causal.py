r"""The live (causal) variant of the bundled 8-microphone model: the same network with causal
heads and windowed causal attention (each frame sees the 4 s before it), so it has a
streaming step of 128 ms blocks (`python -m jaxdiar.stream --causal`).

The TCN of every jaxdiar model is causal already, so the variables of `configs/array8.py` fit
this config as they are; the recipe fine-tunes them (the heads and the attention learn to
look back only) on meetings simulated as for array8 (the model of
benchmarks/results/live-causal-*-2026-12-01.json: 1053 steps, 45 min on the 2-core CPU, from a
pool of 490 meetings of simulator version 2 filled while it trained; the 2026-11-28 one: 417
steps, 432 meetings of version 1):

  python -m jaxdiar.online simulate --config configs/array8_causal.py --seed 5000 \
      --speech ../shared/data/speech/libri-train-clean-100 --out POOL --seconds 1800
  python -m jaxdiar.online train --config configs/array8_causal.py --pool POOL --out DIR \
      --speech ../shared/data/speech/libri-train-clean-100 --seconds 2700 --capacity 160 \
      --init jaxdiar/models/array8.jaxdiar
  python -m jaxdiar.export --variables DIR --out causal.jaxdiar
"""

from configs import array8


def get_config():
  config = array8.get_config()
  config.model.causal = True
  config.model.attention_window = 250      # frames of 16 ms: 4 s
  config.train.batch_size = 16
  config.train.learning_rate = 3e-4
  # The bundled live file's offline decoding keeps array8's gate as it was when it was
  # exported (the first channel at 0.4): the all-channel gate was chosen for array8 alone.
  config.inference.speech_gate = 0.4
  config.inference.speech_channels = "first"
  config.inference.speech_classifier = None       # array8's since 2026-12-06, fitted for it
  config.inference.speech_classifier_threshold = 0.5
  config.inference.speech_classifier_fill = None
  config.inference.overlap_classifier = None       # array8's since 2026-12-07, after its classifier
  config.inference.reassign_classifier = None      # array8's since 2026-12-07 (session 27)
  config.inference.piece_split_cos = None          # the same
  config.inference.turned_view = False            # array8's since session 28: not chosen here
  config.inference.overlap_classifier_threshold = 0.3
  # Likewise the clustering cut and the resegmentation's threshold chosen before array8's
  # fine-tune (2026-12-06).
  config.inference.cluster_threshold = 0.48
  config.inference.resegment_threshold = 0.6
  # ... and its resegmentation: array8's weights until 2026-12-07 (session 28), not refitted.
  config.inference.resegment = array8._weights("array8_causal_resegment")
  # And the count's split / short talkers as they were before 2026-12-07.
  config.inference.split_cos = 0.55
  config.inference.split_seconds = 15.0
  config.inference.found_seconds = None
  config.inference.found_total = 2.0
  config.inference.found_per_minute = 0.0          # array8's since session 30
  config.inference.split_per_minute = 0.0
  config.inference.found_far = None
  return config
