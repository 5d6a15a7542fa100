r"""The geometry-agnostic array model (any array of up to 8 microphones, or one channel):
`srp` features, whose shape does not depend on the array (the first channel's log power
spectrum and the SRP-PHAT response of the given microphones over 36 azimuths, their
positions an input of the model), the network of `configs/mono.py`.

Trained from the bundled mono model (its weights for the spectrum, zero weights for the new
inputs: it starts as mono) on windows that keep a random subset of 1-8 microphones of random
small arrays (`python -m jaxdiar.data.shift pool --arrays random`: circles, lines, two rows
and scattered points of 3-10 cm) and of the 8-microphone 10 cm circle:

  python -m jaxdiar.data.shift pool --arrays random --speech \
      ../shared/data/speech/libri-train-clean-100 --out POOL --seed 6000 --seconds 1800
  python -m jaxdiar.online train --config configs/anyarray.py --pool POOL --out DIR \
      --speech ../shared/data/speech/libri-train-clean-100 --seconds 5400 --capacity 600 \
      --init mono
  python -m jaxdiar.export --variables DIR --out anyarray.jaxdiar
"""

from configs import default
from configs import mono


def get_config():
  config = mono.get_config()
  config.features.kind = "srp"
  config.features.srp_azimuths = 36            # every 10 degrees
  config.features.srp_band = (300.0, 3500.0)   # Hz: the band of jaxdiar.core.spatial
  # The most channels it takes (files of fewer are zero-padded and masked); the geometry of
  # pool meetings that carry none (the 8-microphone 10 cm circle of the shift pools).
  config.features.mic_positions = default.circular_array(8, 0.10)
  config.data.pool_geometry = None
  config.data.subset_mono_prob = 0.1           # windows of one microphone (no directions)
  config.train.batch_size = 16
  config.train.learning_rate = 5e-4
  return config
