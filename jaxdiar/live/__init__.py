"""Live diarization: audio in, closed speaker segments out, as it arrives.

- `streamer`: `Streamer` (push blocks, get segments), the rolling-buffer mode (the diart
  recipe on an exported model) and the frame decisions and segments both modes share;
- `causal`: the causal mode (the model's own streaming step, 128 ms blocks; slots, pieces,
  live spatial resegmentation);
- `speakers`: matching local speakers to global ones (provisional talkers);
- `sources`: audio files and raw PCM as blocks.

`python -m jaxdiar.stream` is the command (`jaxdiar/cli/stream.py`); how it works and how its
settings were chosen: docs/inference.md, "Live diarization".
"""

from jaxdiar.live.sources import file_blocks
from jaxdiar.live.sources import pcm_blocks
from jaxdiar.live.streamer import Segment
from jaxdiar.live.streamer import Streamer
from jaxdiar.live.streamer import TUNABLE

__all__ = ["Segment", "Streamer", "TUNABLE", "file_blocks", "pcm_blocks"]
