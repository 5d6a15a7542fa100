"""Write-then-rename, so that a killed or failed write never leaves a half-written file.

Paths with a scheme (`gs://bucket/...`) are written through `etils.epath` (what orbax and
TFDS use): the file is made locally, then copied in one object write (object stores replace
an object whole, never half).
"""

import contextlib
import os
import pathlib
import tempfile

from etils import epath


class OutputError(ValueError):
  """An output path that cannot be written (message says why)."""


def is_remote(path) -> bool:
  """A path with a scheme (gs://, s3://, ...), not a local file name."""
  return "://" in str(path)


def check_output(path):
  """`path` if a file can be written there (its folder exists or can be made, and is
  writable); raises OutputError naming the path and the cause. Called before long work, so
  that a bad --out fails at once. Remote paths are returned as they are (checked on write)."""
  if is_remote(path):
    return epath.Path(path)
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


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


_UMASK = _umask()


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
  """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds and
  removes it otherwise. For a remote `path`: a local temporary, copied there on success."""
  if is_remote(path):
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    try:
      yield pathlib.Path(tmp)
      target = epath.Path(path)
      target.parent.mkdir(parents=True, exist_ok=True)
      target.write_bytes(pathlib.Path(tmp).read_bytes())
    finally:
      os.unlink(tmp)
    return
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
  os.close(fd)
  try:
    yield pathlib.Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)          # mkstemp's 0600 -> what open() would have made
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
