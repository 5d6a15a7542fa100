"""python -m jaxdiar.stream: live diarization (the command: `jaxdiar/cli/stream.py`; the
library: `jaxdiar.live`). The names below stay importable from here."""

import sys

from jaxdiar.cli.stream import main
from jaxdiar.live.causal import RESEGMENT_CONTEXT
from jaxdiar.live.sources import file_blocks
from jaxdiar.live.sources import pcm_blocks
from jaxdiar.live.streamer import CARRY_SECONDS
from jaxdiar.live.streamer import CAUSAL_SPATIAL_WEIGHT
from jaxdiar.live.streamer import CAUSAL_THRESHOLD
from jaxdiar.live.streamer import PIECE_SECONDS
from jaxdiar.live.streamer import PROVISIONAL_DIRECTION
from jaxdiar.live.streamer import PROVISIONAL_THRESHOLD
from jaxdiar.live.streamer import RELIABLE_SECONDS
from jaxdiar.live.streamer import RESET_SECONDS
from jaxdiar.live.streamer import STREAM_THRESHOLD
from jaxdiar.live.streamer import Segment
from jaxdiar.live.streamer import Streamer
from jaxdiar.live.streamer import TUNABLE

__all__ = [
    "CARRY_SECONDS", "CAUSAL_SPATIAL_WEIGHT", "CAUSAL_THRESHOLD", "PIECE_SECONDS",
    "PROVISIONAL_DIRECTION", "PROVISIONAL_THRESHOLD", "RELIABLE_SECONDS", "RESEGMENT_CONTEXT",
    "RESET_SECONDS", "STREAM_THRESHOLD", "Segment", "Streamer", "TUNABLE", "file_blocks",
    "main", "pcm_blocks",
]

if __name__ == "__main__":
  sys.exit(main())
