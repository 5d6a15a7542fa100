"""Write-then-rename, so that a killed or failed write never leaves a half-written file."""

import contextlib
import os
import pathlib
import tempfile


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
