r"""Smoke recipe: the default, shrunk to run end to end in about a minute on 2 CPU cores.

  python -m jaxdiar.train --config configs/smoke.py --workdir workdirs/smoke
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.channels = [32, 32, 32, 64, 64]
  config.model.num_heads = 4
  config.model.bottleneck_dim = 32
  config.model.head_dim = 16
  config.model.embedding_dim = 32
  config.model.classifier_dim = 32
  config.model.similarity_dim = 16
  config.model.dropout = 0.1

  config.data.window_seconds = 2.0
  config.data.hop_seconds = 1.0
  config.data.num_train_meetings = 4
  config.data.num_dev_meetings = 2
  config.data.meeting_seconds = 12.0

  config.train.batch_size = 4
  config.train.num_steps = 30
  config.train.learning_rate = 3e-3
  config.train.log_every = 5
  config.train.checkpoint_every = 10
  config.eval.every = 15
  config.eval.batch_size = 4
  config.inference.window_seconds = 2.0
  config.inference.step_seconds = 1.0
  return config
