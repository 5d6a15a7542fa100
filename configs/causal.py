r"""Streaming recipe: every conv and head causal, no attention (a stateful step per block).

  python -m jaxdiar.train --config configs/causal.py --workdir workdirs/causal
  python -m jaxdiar.export --workdir workdirs/causal --out causal.jaxdiar   # + streaming step
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.causal = True
  config.model.use_attention = False
  return config
