"""Write-then-rename, so that a killed or failed write never leaves a half-written file."""

import contextlib
import os
import pathlib
import tempfile


class OutputError(ValueError):
  """An output path that cannot be written (message says why)."""


def check_output(path) -> pathlib.Path:
  """`path` if a file can be written there (its folder exists or can be made, and is
  writable); raises OutputError naming the path and the cause. Called before long work, so
  that a bad --out fails at once."""
  path = pathlib.Path(path)
  if path.is_dir():
    raise OutputError(f"{path}: is a directory, expected a file path")
  folder = path.parent
  while not folder.exists():
    folder = folder.parent
  if not folder.is_dir():
    raise OutputError(f"{path}: cannot write there ({folder} is not a directory)")
  if not os.access(folder, os.W_OK | os.X_OK):
    raise OutputError(f"{path}: cannot write there ({folder} is not writable)")
  return path


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
  """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds and
  removes it otherwise."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
  os.close(fd)
  try:
    yield pathlib.Path(tmp)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_text(path, text: str) -> None:
  with atomic_path(path) as tmp:
    tmp.write_text(text, encoding="utf-8")


def write_bytes(path, data: bytes) -> None:
  with atomic_path(path) as tmp:
    tmp.write_bytes(data)
