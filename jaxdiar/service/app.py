"""An HTTP service for an exported model (FastAPI on uvicorn, the ecosystem's ASGI stack):

  POST /v1/diarize   audio as the raw body or a multipart `file` field; query (or form)
                     fields num_speakers, min_speakers, max_speakers, uri, speakers
                     (true: name clusters from the --speakers bank), exclusive (true: one
                     talker at a time), settings (JSON object), mics (this recording's
                     microphone positions: a JSON list of [x, y, z] metres in channel order,
                     or a preset name; replaces --mics). JSON answer (uri, duration,
                     speakers, segments, overlap, model, settings: the CLI's JSON), or RTTM
                     with Accept: text/plain.
  GET  /healthz      liveness and queue depth.
  GET  /v1/model     the exported model's metadata.
  GET  /docs         the endpoints (a page of the service's own, no CDN: works offline);
  GET  /openapi.json the OpenAPI document (request bodies and answers described).

The model is loaded and compiled once; each recording is diarized in a bounded pool of worker
threads (the event loop stays responsive), behind a bounded queue (503 with Retry-After when
full) and a per-request time limit (504). Uploads over --max-upload-mb are refused while they
stream in (413), as are recordings longer than --max-duration-s (413); a body that is not audio
is 415, and a recording the model cannot take (channel count, all zeros, NaN) is 422 with the
reason. The upload lives in a temporary folder removed when its diarization ends. With
--token (or JAXDIAR_TOKEN) every request but /healthz needs `Authorization: Bearer TOKEN`.
"""

import asyncio
import concurrent.futures
import dataclasses
import html
import json
import logging
import pathlib
import shutil
import tempfile
import threading

import numpy as np

from jaxdiar import pipeline as pipeline_lib
from jaxdiar.core import geometry
from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import decode as decode_lib
from jaxdiar.decoding import settings as settings_lib
from jaxdiar.decoding import windows as windows_lib
from jaxdiar.io import rttm

TOKEN_ENV = "JAXDIAR_TOKEN"
log = logging.getLogger(__name__)


@dataclasses.dataclass
class Settings:
  model: str
  max_upload_mb: float = 100.0
  max_duration_s: float = 4 * 3600.0
  workers: int = 1
  queue: int = 8
  timeout_s: float = 600.0
  token: str | None = None
  speakers: str | None = None       # an enrolled-speaker bank (python -m jaxdiar.enroll)
  mics: str | None = None           # the recordings' array (jaxdiar.core.geometry: preset or file)


_BINARY = {"schema": {"type": "string", "format": "binary"}}
# The request body, which the handler reads itself (raw audio or a multipart `file`).
DIARIZE_BODY = {"requestBody": {"required": True, "content": {
    "audio/wav": _BINARY, "audio/flac": _BINARY, "audio/ogg": _BINARY,
    "application/octet-stream": _BINARY,
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the recording"},
        "num_speakers": {"type": "integer"}, "min_speakers": {"type": "integer"},
        "max_speakers": {"type": "integer"}, "uri": {"type": "string"},
        "speakers": {"type": "boolean"}, "exclusive": {"type": "boolean"},
        "settings": {"type": "string", "description": "JSON object of decoding settings"},
        "mics": {"type": "string", "description": "JSON list of [x, y, z] metres in channel "
                                                  "order, or a preset name"}}}}}}}
_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
DIARIZE_RESPONSES = {
    200: {"description": "the diarization: JSON (uri, duration, speakers, segments, overlap, "
                         "model, settings), or RTTM with Accept: text/plain",
          "content": {"application/json": {"schema": {"type": "object", "properties": {
              "uri": {"type": "string"}, "duration": {"type": "number"},
              "speakers": {"type": "array", "items": {"type": "string"}},
              "segments": {"type": "array", "items": {"type": "object", "properties": {
                  "start": {"type": "number"}, "end": {"type": "number"},
                  "speaker": {"type": "string"}}}},
              "overlap": {"type": "array", "items": {"type": "object", "properties": {
                  "start": {"type": "number"}, "end": {"type": "number"}}}},
              "model": {"type": "string"}, "settings": {"type": "object"}}}},
                      "text/plain": {"schema": {"type": "string"}}}},
    **{code: {"description": what, **_ERROR} for code, what in (
        (400, "no file field, or the client went away"), (401, "missing or wrong token"),
        (413, "upload or recording too large"), (415, "not audio"),
        (422, "a recording or parameter the model cannot take"),
        (503, "queue full (Retry-After)"), (504, "time limit reached"))}}


def docs_page(openapi: dict) -> str:
  """An HTML page of the service's endpoints, with no external scripts (works offline)."""
  rows = []
  for path, methods in openapi.get("paths", {}).items():
    for method, op in methods.items():
      params = ", ".join(p["name"] for p in op.get("parameters", []))
      body = ", ".join(op.get("requestBody", {}).get("content", {}))
      rows.append(f"<tr><td><code>{method.upper()} {html.escape(path)}</code></td>"
                  f"<td>{html.escape(op.get('summary', ''))}</td>"
                  f"<td>{html.escape(params)}</td><td>{html.escape(body)}</td></tr>")
  return ("<!doctype html><html><head><meta charset='utf-8'><title>jaxdiar service</title>"
          "</head><body><h1>jaxdiar service</h1>"
          f"<p>{html.escape(openapi.get('info', {}).get('description', ''))} The full "
          "description: <a href='/openapi.json'>/openapi.json</a>.</p>"
          "<table border='1' cellpadding='4'><tr><th>endpoint</th><th>what</th>"
          "<th>query parameters</th><th>body</th></tr>" + "".join(rows) + "</table>"
          "</body></html>")


def request_settings(text: str | None) -> dict:
  """A request's `settings` (a JSON object) checked: only `jaxdiar.decoding.settings.SERVICE` names,
  each valid; ValueError naming the one at fault."""
  if not text:
    return {}
  try:
    values = json.loads(text)
  except json.JSONDecodeError:
    raise ValueError("settings must be a JSON object, e.g. {\"onset\": 0.6}") from None
  if not isinstance(values, dict):
    raise ValueError("settings must be a JSON object, e.g. {\"onset\": 0.6}")
  settings_lib.validate(values, what="setting")
  refused = sorted(set(values) - set(settings_lib.SERVICE))
  if refused:
    raise ValueError(f"setting(s) {', '.join(refused)} cannot be changed per request; "
                     f"these can: {', '.join(settings_lib.SERVICE)}")
  return values


def request_mics(text: str | None):
  """A request's own microphone positions ([M, 3]) or None: a JSON list of [x, y, z] metres
  in channel order, or a preset name (`jaxdiar.core.geometry.PRESETS`); never a path (a
  request does not make the server read its files). ValueError says what is wrong."""
  if text is None or not text.strip():
    return None
  text = text.strip()
  if text in geometry.PRESETS:
    return geometry.load(text)
  try:
    positions = json.loads(text)
  except json.JSONDecodeError:
    positions = None
  if not isinstance(positions, list):
    raise ValueError(f"mics: expected a JSON list of [x, y, z] positions (metres, channel "
                     f"order) or a preset ({', '.join(sorted(geometry.PRESETS))})")
  return geometry.load(positions)


class _Worker:
  """The loaded model, a bounded thread pool and its queue bound."""

  def __init__(self, settings: Settings):
    self.settings = settings
    self.pipeline = pipeline_lib.Pipeline(settings.model, speakers=settings.speakers,
                                          mics=settings.mics)
    self.model = self.pipeline.loaded_model
    self.bank = self.pipeline.bank_for(self.model)     # None without --speakers
    self.pool = concurrent.futures.ThreadPoolExecutor(settings.workers,
                                                      thread_name_prefix="diarize")
    self.lock = threading.Lock()
    self.pending = 0                 # queued + running; released when the thread ends
    self._warm_up()

  def _warm_up(self) -> None:
    """Compile the model's forward pass for the window shape, before the first request."""
    meta = self.model.meta
    n = int(round(meta["inference"]["window_seconds"] * self.model.sample_rate))
    audio = np.zeros((meta["inference"]["batch_windows"], self.model.num_channels, n),
                     np.float32)
    self.model(audio)

  def try_acquire(self) -> bool:
    with self.lock:
      if self.pending >= self.settings.workers + self.settings.queue:
        return False
      self.pending += 1
      return True

  def release(self, _future=None) -> None:
    with self.lock:
      self.pending -= 1


def create_app(settings: Settings):
  """The FastAPI application (the model is loaded and compiled here, once)."""
  import fastapi
  from fastapi import responses
  import starlette.requests

  worker = _Worker(settings)
  # FastAPI's /docs and /redoc load their scripts from a CDN (blank without internet): this
  # service serves its own page instead, written from the OpenAPI document.
  app = fastapi.FastAPI(title="jaxdiar", version="1", docs_url=None, redoc_url=None,
                        description="Multi-channel speaker diarization (jaxdiar).")
  limit = int(settings.max_upload_mb * 1024 * 1024)

  def error(status: int, message: str, **headers):
    return responses.JSONResponse({"error": message}, status_code=status, headers=headers)

  @app.exception_handler(fastapi.exceptions.RequestValidationError)
  async def invalid(request, exc):
    """A parameter of the wrong type: the service's one error shape, not FastAPI's."""
    parts = [f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
             for e in exc.errors()]
    return error(422, "; ".join(parts) or "invalid request")

  @app.middleware("http")
  async def authorize(request, call_next):
    if settings.token and request.url.path != "/healthz":
      if request.headers.get("authorization", "") != f"Bearer {settings.token}":
        return error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
    return await call_next(request)

  @app.get("/healthz")
  def healthz():
    return dict(status="ok", pending=worker.pending)

  @app.get("/v1/model")
  def model_info():
    meta = worker.model.meta
    return dict(path=str(settings.model), sample_rate=worker.model.sample_rate,
                num_channels=worker.model.num_channels, feature_kind=meta["feature_kind"],
                can_stream=worker.model.can_stream, speakers_bank=settings.speakers,
                meta=meta)

  @app.get("/docs", response_class=responses.HTMLResponse, include_in_schema=False)
  def docs():
    return docs_page(app.openapi())

  async def read_body(request) -> bytes | None:
    """The request body, or None as soon as it exceeds the upload limit. A client that
    goes away mid-upload raises ClientDisconnect (one log line, see `diarize`)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
      return None
    chunks, size = [], 0
    async for chunk in request.stream():
      size += len(chunk)
      if size > limit:
        return None
      chunks.append(chunk)
    return b"".join(chunks)

  @app.post("/v1/diarize", responses=DIARIZE_RESPONSES, openapi_extra=DIARIZE_BODY)
  async def diarize(request: fastapi.Request, num_speakers: int | None = None,
                    min_speakers: int | None = None, max_speakers: int | None = None,
                    uri: str | None = None, speakers: bool = False,
                    exclusive: bool = False,
                    overrides: str | None = fastapi.Query(None, alias="settings"),
                    mics: str | None = None):
    """Diarize one recording (raw body or multipart field `file`); `settings`: a JSON object
    of decoding settings for this request (names: jaxdiar.decoding.settings.SERVICE); `mics`:
    this recording's microphone positions (JSON list of [x, y, z] metres, or a preset)."""
    try:
      body = await read_body(request)
    except starlette.requests.ClientDisconnect:
      log.warning("client %s went away during its upload",
                  request.client.host if request.client else "?")
      return error(400, "client disconnected during the upload")
    if body is None:
      return error(413, f"upload larger than {settings.max_upload_mb:g} MB")
    fields, name = {}, None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
      async def replay():
        return {"type": "http.request", "body": body, "more_body": False}
      form = await starlette.requests.Request(request.scope, replay).form()
      upload = form.get("file")
      if upload is None or isinstance(upload, str):
        return error(400, "multipart upload without a 'file' field")
      name = upload.filename
      body = await upload.read()
      fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
      counts = {k: (int(fields[k]) if k in fields else v) for k, v in
                dict(num_speakers=num_speakers, min_speakers=min_speakers,
                     max_speakers=max_speakers).items()}
    except ValueError as e:
      return error(422, f"speaker counts must be integers ({e})")
    try:
      decode_lib.check_counts(**counts)
    except windows_lib.InputError as e:
      return error(422, str(e))
    try:
      overrides = request_settings(fields.get("settings", overrides))
      positions = request_mics(fields.get("mics", mics))
    except ValueError as e:
      return error(422, str(e))
    uri = rttm.safe_uri(fields.get("uri", uri) or (pathlib.Path(name).stem if name else "upload"))
    truthy = lambda key: fields.get(key, "").lower() in ("1", "true", "yes")
    name_speakers = speakers or truthy("speakers")
    exclusive = exclusive or truthy("exclusive")
    if name_speakers and worker.bank is None:
      return error(422, "speakers=true needs a server started with --speakers BANK")
    if not body:
      return error(415, "empty body: send audio (wav, flac, ogg) as the body or a 'file' field")
    folder = tempfile.mkdtemp(prefix="jaxdiar-serve-")
    path = pathlib.Path(folder) / ("upload" + (pathlib.Path(name).suffix if name else ""))
    path.write_bytes(body)
    try:                       # what the header says is checked before queueing
      if audio_lib.needs_decoding(path):
        path = audio_lib.decode_to_wav(path, path.with_name("decoded.wav"))
      rate, _, frames = audio_lib.info(path)
      duration = frames / rate
      if duration > settings.max_duration_s:
        shutil.rmtree(folder, ignore_errors=True)
        return error(413, f"recording of {duration:.0f} s, over the "
                          f"{settings.max_duration_s:g} s cap")
      windows_lib.check_input(path, worker.model,
                              mics=worker.pipeline.mics if positions is None else positions)
    except (audio_lib.AudioError, windows_lib.InputError) as e:
      shutil.rmtree(folder, ignore_errors=True)
      status = 415 if isinstance(e, audio_lib.AudioError) else 422
      return error(status, str(e).replace(str(path), uri))
    if not worker.try_acquire():
      shutil.rmtree(folder, ignore_errors=True)
      return error(503, "busy: the queue is full", **{"Retry-After": "5"})

    def run():
      try:
        return 200, worker.pipeline.run(path, uri=uri, exclusive=exclusive,
                                        name_speakers=name_speakers, settings=overrides,
                                        mics=positions, **counts)
      except audio_lib.AudioError as e:
        return 415, str(e).replace(str(path), uri)
      except windows_lib.InputError as e:
        return 422, str(e).replace(str(path), uri)
      finally:
        shutil.rmtree(folder, ignore_errors=True)

    future = worker.pool.submit(run)
    future.add_done_callback(worker.release)
    try:
      status, value = await asyncio.wait_for(asyncio.wrap_future(future), settings.timeout_s)
    except asyncio.TimeoutError:
      return error(504, f"diarization took longer than {settings.timeout_s:g} s")
    if status != 200:
      return error(status, value)
    if "text/plain" in request.headers.get("accept", ""):
      return responses.PlainTextResponse(value.dumps("rttm"))
    return value.json()

  app.state.worker = worker
  return app
