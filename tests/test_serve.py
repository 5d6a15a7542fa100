"""The HTTP service over real HTTP on 127.0.0.1: a server process per setting, httpx clients."""

import concurrent.futures
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import httpx
import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import soundfile as sf

from jaxdiar import diarize
from jaxdiar.cli import serve as cli_serve
from jaxdiar.models import runtime
from tests.conftest import REPO


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Server:
  def __init__(self, model, tmp: pathlib.Path, *flags):
    self.port = _free_port()
    self.url = f"http://127.0.0.1:{self.port}"
    self.tmp = tmp
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp))
    self.log = open(tmp / "server.log", "w")
    self.process = subprocess.Popen(
        [sys.executable, "-m", "jaxdiar.serve", "--model", str(model), "--port", str(self.port),
         *flags], env=env, stdout=self.log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while True:
      try:
        if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
          return
      except httpx.TransportError:
        pass
      if self.process.poll() is not None or time.time() > deadline:
        self.close()
        raise RuntimeError("server did not start:\n" + (tmp / "server.log").read_text())
      time.sleep(0.5)

  def close(self):
    self.process.terminate()
    self.process.wait(30)
    self.log.close()

  def leftovers(self) -> list:
    return list(self.tmp.glob("jaxdiar-serve-*"))


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
  path, _ = exported
  s = Server(path, tmp_path_factory.mktemp("serve"), "--workers", "2", "--queue", "8")
  yield s
  s.close()


@pytest.fixture(scope="module")
def strict(exported, tmp_path_factory):
  path, _ = exported
  s = Server(path, tmp_path_factory.mktemp("strict"), "--workers", "1", "--queue", "0",
             "--max-upload-mb", "4", "--max-duration-s", "100", "--timeout-s", "0.05",
             "--token", "sesame")
  yield s
  s.close()


def test_diarize_equals_the_cli_json_and_rttm(server, exported, meeting, tmp_path):
  path, _ = exported
  out = tmp_path / "cli.rttm"
  assert diarize.main([str(meeting), "--model", str(path), "--out", str(out)]) == 0
  with open(meeting, "rb") as f:
    r = httpx.post(server.url + "/v1/diarize", files={"file": (meeting.name, f)},
                   headers={"Accept": "text/plain"}, timeout=120)
  assert r.status_code == 200, r.text
  assert r.text == out.read_text()
  r = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(),
                 params={"uri": meeting.stem}, timeout=120)
  assert r.status_code == 200, r.text
  body = r.json()
  as_json = tmp_path / "cli.json"         # the CLI's JSON is the service's, byte for byte
  assert diarize.main([str(meeting), "--model", str(path), "--out", str(as_json)]) == 0
  assert json.loads(as_json.read_text()) == body
  assert body["model"] == str(path) and body["settings"]["onset"] > 0
  one = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(),
                   params={"uri": meeting.stem, "exclusive": "true"}, timeout=120).json()
  as_json = tmp_path / "one.json"
  assert diarize.main([str(meeting), "--model", str(path), "--out", str(as_json),
                       "--exclusive"]) == 0
  assert json.loads(as_json.read_text()) == one and not one["overlap"]
  assert body["uri"] == meeting.stem
  assert body["duration"] == pytest.approx(sf.info(meeting).duration)
  lines = [line.split() for line in out.read_text().splitlines()]
  # Same speakers in the same order, same times to 2 ms (approx takes flat sequences only).
  assert [l[7] for l in lines] == [s["speaker"] for s in body["segments"]]
  assert [t for l in lines for t in (float(l[3]), float(l[3]) + float(l[4]))] == pytest.approx(
      [t for s in body["segments"] for t in (s["start"], s["end"])], abs=2e-3)
  assert body["speakers"] == sorted({l[7] for l in lines})
  for region in body["overlap"]:       # each overlap region is covered by two segments
    mid = (region["start"] + region["end"]) / 2
    assert sum(s["start"] <= mid <= s["end"] for s in body["segments"]) >= 2
  spaced = httpx.post(server.url + "/v1/diarize", timeout=120, headers={"Accept": "text/plain"},
                      files={"file": ("my meeting.wav", meeting.read_bytes())})
  assert spaced.status_code == 200 and spaced.text.split()[1] == "my_meeting"
  r = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(),
                 params={"num_speakers": 2}, timeout=120)
  assert r.status_code == 200 and len(r.json()["speakers"]) <= 2
  assert httpx.get(server.url + "/v1/model").json()["num_channels"] == 8
  assert "/v1/diarize" in httpx.get(server.url + "/openapi.json").json()["paths"]
  zeros = httpx.post(server.url + "/v1/diarize", timeout=60,
                     content=_wav(tmp_path / "zeros.wav", 2, 8, value=0.0))
  assert zeros.status_code == 422 and "all zeros" in zeros.json()["error"]
  assert not server.leftovers()


def test_eight_concurrent_clients_all_answered_correctly(server, meeting):
  data = meeting.read_bytes()
  expected = httpx.post(server.url + "/v1/diarize", content=data, timeout=120).json()

  def one(_):
    return httpx.post(server.url + "/v1/diarize", content=data, timeout=300)
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(one, range(8)))
  assert [a.status_code for a in answers] == [200] * 8
  assert all(a.json() == expected for a in answers)
  assert not server.leftovers()


def test_client_that_disconnects_mid_upload_leaves_the_server_healthy(server, meeting):
  with socket.create_connection(("127.0.0.1", server.port)) as s:
    s.sendall(b"POST /v1/diarize HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
    s.sendall(b"\0" * 100_000)
  assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
  r = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(), timeout=120)
  assert r.status_code == 200
  time.sleep(0.5)
  assert httpx.get(server.url + "/healthz").json()["pending"] == 0
  assert not server.leftovers()
  server.log.flush()
  log = (server.tmp / "server.log").read_text()
  assert "Traceback" not in log and log.count("went away during its upload") == 1, log


def test_docs_offline_and_the_body_described(server):
  page = httpx.get(server.url + "/docs")
  assert page.status_code == 200 and "/v1/diarize" in page.text
  assert "<script" not in page.text and "cdn" not in page.text.lower()
  post = httpx.get(server.url + "/openapi.json").json()["paths"]["/v1/diarize"]["post"]
  content = post["requestBody"]["content"]
  assert "file" in content["multipart/form-data"]["schema"]["properties"]
  assert "audio/wav" in content
  assert {"200", "413", "422"} <= set(post["responses"])


def test_port_in_use_is_refused_before_the_model_loads(tmp_path):
  with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    run = subprocess.run([sys.executable, "-m", "jaxdiar.serve", "--model",
                          str(tmp_path / "never-read.jaxdiar"), "--port", str(port)],
                         capture_output=True, text=True, timeout=120)
  assert run.returncode == 2
  assert f"cannot listen on 127.0.0.1:{port}" in run.stderr and "never-read" not in run.stderr


def _wav(path, seconds, channels, rate=16000, subtype="PCM_16", value=None):
  rng = np.random.default_rng(0)
  audio = (0.05 * rng.standard_normal((int(seconds * rate), channels)) if value is None
           else np.full((int(seconds * rate), channels), value))
  sf.write(path, audio.astype(np.float32), rate, subtype=subtype)
  return path.read_bytes()


def test_error_statuses(strict, server, meeting, tmp_path):
  auth = {"Authorization": "Bearer sesame"}
  post = lambda content, headers=auth, **kw: httpx.post(
      strict.url + "/v1/diarize", content=content, headers=headers, timeout=60, **kw)
  assert httpx.get(strict.url + "/healthz").status_code == 200          # no token needed
  assert httpx.get(strict.url + "/v1/model").status_code == 401
  assert post(b"x", headers={}).status_code == 401
  assert post(b"x", headers={"Authorization": "Bearer wrong"}).status_code == 401
  assert httpx.get(strict.url + "/v1/model", headers=auth).status_code == 200
  big = post(os.urandom(5 * 1024 * 1024))
  assert big.status_code == 413 and "MB" in big.json()["error"]
  long = post(_wav(tmp_path / "long.wav", 200, 1, rate=8000, subtype="PCM_U8"))
  assert long.status_code == 413 and "cap" in long.json()["error"]
  assert post(b"this is not audio").status_code == 415
  assert post(b"").status_code == 415
  two = post(_wav(tmp_path / "two.wav", 2, 2))
  assert two.status_code == 422 and "2 channel" in two.json()["error"]
  assert post(b"x", params={"num_speakers": 0}).status_code == 422
  typed = post(b"x", params={"num_speakers": "two"})
  assert typed.status_code == 422 and "num_speakers" in typed.json()["error"]   # one shape
  crossed = post(b"x", params={"min_speakers": 5, "max_speakers": 2})
  assert crossed.status_code == 422 and "above max_speakers" in crossed.json()["error"]
  assert post(b"x", params={"speakers": "true"}).status_code == 422      # no bank served
  # 14 s of 8 channels take longer than the 0.05 s limit: 504; the worker is still busy with
  # it and the queue holds nothing more: 503 with Retry-After.
  data = _wav(tmp_path / "busy.wav", 14, 8)
  assert post(data).status_code == 504
  busy = post(data)
  assert busy.status_code == 503 and busy.headers["Retry-After"]
  deadline = time.time() + 60          # the abandoned work ends, and its upload is removed
  while httpx.get(strict.url + "/healthz").json()["pending"] and time.time() < deadline:
    time.sleep(0.2)
  time.sleep(0.2)
  assert not strict.leftovers()


def test_overlap_regions():
  from jaxdiar.io import formats
  from jaxdiar.io.rttm import Turn
  turns = [Turn("u", 0, 2, "a"), Turn("u", 1, 3, "b"), Turn("u", 1.5, 1.8, "c"),
           Turn("u", 4, 5, "a"), Turn("u", 5, 6, "b")]
  assert formats.overlap_regions(formats.to_annotation(turns)) == [(1, 2)]


def test_serve_refuses_a_bad_model_file(tmp_path):
  (tmp_path / "m.jaxdiar").write_bytes(b"nope")
  assert cli_serve.main(["--model", str(tmp_path / "m.jaxdiar")]) == 2


PARAM = st.one_of(st.none(), st.integers(-5, 10**12), st.text(max_size=12),
                  st.sampled_from(["1", "true", "yes", "0", "-1", "1e3", "nan", "", " "]))


@hypothesis.settings(max_examples=40, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(num=PARAM, low=PARAM, high=PARAM, uri=PARAM, speakers=PARAM, exclusive=PARAM,
                  multipart=st.booleans(),
                  body=st.sampled_from([b"", b"RIFF", b"not audio at all", b"\0" * 64]))
def test_service_parameters_never_give_a_500(server, num, low, high, uri, speakers, exclusive,
                                             multipart, body):
  """Any value of any query or form field, with bodies that are not a diarizable recording:
  a 4xx in the one error shape, never a 500 or a hang."""
  fields = {k: str(v) for k, v in dict(num_speakers=num, min_speakers=low, max_speakers=high,
                                       uri=uri, speakers=speakers,
                                       exclusive=exclusive).items() if v is not None}
  if multipart:
    r = httpx.post(server.url + "/v1/diarize", data=fields, files={"file": ("x.wav", body)},
                   timeout=60)
  else:
    r = httpx.post(server.url + "/v1/diarize", params=fields, content=body, timeout=60)
  assert 400 <= r.status_code < 500, (r.status_code, r.text)
  assert set(r.json()) == {"error"}


def test_per_request_settings_are_the_declared_subset(server, meeting):
  """`settings={...}` takes exactly jaxdiar.decoding.settings.SERVICE (each a declared, scalar
  setting), applied to that request; any other name or a bad value is a 422 naming it."""
  from jaxdiar.decoding import settings as settings_lib
  assert set(settings_lib.SERVICE) <= set(settings_lib.BY_NAME)
  assert all(settings_lib.BY_NAME[k].kind is not tuple for k in settings_lib.SERVICE)
  chosen = {k: (settings_lib.BY_NAME[k].default if settings_lib.BY_NAME[k].default is not None
                else settings_lib.BY_NAME[k].low) for k in settings_lib.SERVICE}
  chosen["onset"], chosen["offset"] = 0.65, 0.45
  r = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(), timeout=120,
                 params={"settings": json.dumps(chosen)})
  assert r.status_code == 200, r.text
  assert {k: r.json()["settings"][k] for k in chosen} == chosen
  with open(meeting, "rb") as f:          # the multipart field works the same way
    r = httpx.post(server.url + "/v1/diarize", files={"file": (meeting.name, f)},
                   data={"settings": json.dumps({"onset": 0.7})}, timeout=120)
  assert r.status_code == 200 and r.json()["settings"]["onset"] == 0.7
  for bad, named in (({"resegment": [0.1]}, "resegment"), ({"window_seconds": 4.0},
                     "window_seconds"), ({"onset": 3}, "onset"), ({"onsett": 0.5}, "onsett")):
    r = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(), timeout=60,
                   params={"settings": json.dumps(bad)})
    assert r.status_code == 422 and named in r.json()["error"], r.text
  r = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(), timeout=60,
                 params={"settings": "[1, 2]"})
  assert r.status_code == 422 and "JSON object" in r.json()["error"]
  assert not server.leftovers()


def test_per_request_mics(server, exported, meeting):
  """`mics`: this recording's positions, a JSON list or a preset name (never a path on the
  server); checked before queueing as `diarize --mics` checks them."""
  path, _ = exported
  own = np.asarray(runtime.load(path).meta["mic_positions"]).tolist()
  plain = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(), timeout=120)
  same = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(), timeout=120,
                    params={"mics": json.dumps(own)})
  assert plain.status_code == same.status_code == 200, same.text
  assert same.json()["segments"] == plain.json()["segments"]
  for mics, said in (("respeaker-4", "4 microphone positions"),
                     (json.dumps((np.asarray(own) * 0.5).tolist()), "its own array"),
                     (str(REPO / "README.md"), "JSON list"), ("[[0, 0, 0]]", "at least two")):
    r = httpx.post(server.url + "/v1/diarize", content=meeting.read_bytes(), timeout=60,
                   params={"mics": mics})
    assert r.status_code == 422 and said in r.json()["error"], (mics, r.text)
  assert not server.leftovers()

