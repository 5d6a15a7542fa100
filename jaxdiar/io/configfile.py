"""Config files by path: `configs/<name>.py` is not an installed package (a top-level
`configs` would collide with other projects'); the CLIs load a file with
ml_collections.config_flags, as `python -m jaxdiar.train --config` does (typed overrides
`--config.a.b=value`; unknown keys refused with a message)."""

import pathlib

from absl import flags
from ml_collections import config_flags

# The repository's recipes, next to the package (a source checkout or an editable install).
CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


class ConfigError(ValueError):
  """A config file that cannot be loaded, or an override it refuses (message says why)."""


def load(path, overrides=(), *, prog: str = "jaxdiar"):
  """The config of the file at `path` with `--config.a.b=value` overrides applied."""
  if not pathlib.Path(path).is_file():
    raise ConfigError(f"{path}: no such config file")
  argv = [prog, f"--config={path}", *overrides]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config file", flag_values=flag_values,
                                  sys_argv=argv)
  try:
    flag_values(argv)
    return flag_values.config
  except flags.Error as e:
    raise ConfigError(str(e)) from None
  except AttributeError as e:     # config_flags' answer to a key the config does not have
    raise ConfigError(f"{path} has no field {e}") from None
