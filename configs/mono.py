r"""The bundled single-channel model's recipe (`lps` features, one distant microphone such as
AMI's): `configs/array8.py` with one input channel, trained on one random microphone of the
same simulated 8-microphone meetings.

  python -m jaxdiar.online train --config configs/mono.py --pool POOL --out DIR \
      --speech ../shared/data/speech/libri-train-clean-100 --seconds 480

The bundled file is that model fine-tuned on five real AMI excerpts and blended back with it
(WiSE-FT 0.5), clustering the pretrained voice encoder's d-vectors (`jaxdiar.voice`): the
README's model card has the commands.
"""

from configs import array8
from configs import default


def get_config():
  config = array8.get_config()
  config.features.kind = "lps"
  config.features.mic_positions = [[0.0, 0.0, 0.0]]
  config.features.mic_pairs = []
  config.data.pool_geometry = default.circular_array(8, 0.10)  # simulated array; 1 channel used
  config.data.augment_rotate = False
  config.inference.spatial_weight = 0.0      # no array, no directions
  # Count stitching, none of array8's spatial settings (docs/models.md).
  config.inference.stitch = "count"
  config.inference.anchor_seconds = 2.0
  config.inference.osd_threshold = 0.6
  config.inference.resegment = None
  config.inference.resegment_threshold = 0.6
  config.inference.min_speech_seconds = 0.2   # its own (array8's is 0.5 since 2026-12-06)
  config.inference.split_cos = None
  config.inference.split_seconds = 15.0
  config.inference.found_seconds = None         # array8's since 2026-12-07
  config.inference.found_per_minute = 0.0       # array8's since session 30
  config.inference.split_per_minute = 0.0
  config.inference.found_far = None
  config.inference.merge_overlap = None
  # The voice encoder's d-vectors clustered, small clusters dissolved (docs/models.md).
  config.inference.voice_weight = 1.0
  config.inference.cluster_threshold = 0.175
  config.inference.min_cluster_size = 2
  config.inference.onset = 0.55
  config.inference.offset = 0.45
  # The pretrained speech detector's gate (2026-12-02) (docs/models.md).
  config.inference.speech_gate = 0.4
  config.inference.speech_pad = 0.3
  config.inference.speech_channels = "first"   # the channel it reads (array8's: all of them)
  config.inference.speech_classifier = None       # array8's reads the array's responses
  config.inference.overlap_classifier = None       # array8's comes after its classifier
  config.inference.reassign_classifier = None      # array8's since 2026-12-07, fitted for it
  config.inference.piece_split_cos = None          # array8's too (its file gives the pieces)
  config.inference.turned_view = False            # array8's since session 28: no circle here
  config.inference.speech_classifier_threshold = 0.5
  config.inference.speech_classifier_fill = None
  return config
