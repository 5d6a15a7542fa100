"""python -m jaxdiar.serve --model M.jaxdiar [--host 127.0.0.1] [--port 8000]
"""

import argparse
import logging
import os
import socket
import sys

from jaxdiar.models import bundled
from jaxdiar.models import runtime
from jaxdiar.service import app as app_lib


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.serve",
                              description=__doc__ + "\n" + app_lib.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", required=True,
                 help=f"a .jaxdiar file or a bundled model name ({', '.join(bundled.MODELS)})")
  p.add_argument("--host", default="127.0.0.1",
                 help="address to bind (default 127.0.0.1: this machine only)")
  p.add_argument("--port", type=int, default=8000)
  p.add_argument("--max-upload-mb", type=float, default=100.0)
  p.add_argument("--max-duration-s", type=float, default=4 * 3600.0)
  p.add_argument("--workers", type=int, default=1, help="recordings diarized at once")
  p.add_argument("--queue", type=int, default=8, help="requests waiting beyond the workers")
  p.add_argument("--timeout-s", type=float, default=600.0, help="per-request time limit")
  p.add_argument("--token", default=os.environ.get(app_lib.TOKEN_ENV),
                 help=f"require 'Authorization: Bearer TOKEN' (default: ${app_lib.TOKEN_ENV})")
  p.add_argument("--speakers", default=None,
                 help="enrolled-speaker bank (python -m jaxdiar.enroll) for speakers=true")
  p.add_argument("--mics", default=None, metavar="FILE|PRESET",
                 help="every recording comes from this array (jaxdiar.core.geometry); others are "
                      "refused")
  args = p.parse_args(argv)
  if args.workers < 1 or args.queue < 0:
    p.error("--workers must be >= 1 and --queue >= 0")
  settings = app_lib.Settings(model=args.model, max_upload_mb=args.max_upload_mb,
                              max_duration_s=args.max_duration_s, workers=args.workers,
                              queue=args.queue, timeout_s=args.timeout_s, token=args.token,
                              speakers=args.speakers, mics=args.mics)
  try:                  # the port is taken before the model is loaded, and held meanwhile
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
  except OSError as e:
    print(f"error: cannot listen on {args.host}:{args.port} ({e.strerror or e}); is another "
          "server there? choose another --port", file=sys.stderr)
    return 2
  try:
    app = app_lib.create_app(settings)
  except (runtime.ModelFileError, FileNotFoundError, ValueError) as e:
    sock.close()
    print(f"error: {e}", file=sys.stderr)
    return 2
  import uvicorn
  logging.basicConfig(format="jaxdiar.serve: %(message)s")
  print(f"jaxdiar.serve: {settings.model} on http://{args.host}:{args.port} "
        f"({args.workers} worker(s), queue {args.queue})", file=sys.stderr, flush=True)
  uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
  return 0


if __name__ == "__main__":
  sys.exit(main())
