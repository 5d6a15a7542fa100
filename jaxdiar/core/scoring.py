"""DER (missed / false alarm / confusion), JER, per-speaker precision/recall/F1 and OSD
precision/recall, scored with pyannote.metrics. A table on stdout, JSON with --json.
`collar` is pyannote's: the total width around each reference boundary (0.5 = ±0.25 s).
"""


from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.detection import DetectionPrecisionRecallFMeasure
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate



def to_annotation(turns, uri: str) -> Annotation:
  ann = Annotation(uri=uri)
  for i, t in enumerate(turns):
    ann[Segment(t.onset, t.offset), i] = t.speaker
  return ann


def overlap_timeline(ann: Annotation) -> Timeline:
  """Regions where at least two speakers talk."""
  return ann.get_overlap()


def _as_detection(timeline: Timeline, uri: str) -> Annotation:
  ann = Annotation(uri=uri)
  for seg in timeline.support():
    ann[seg] = "overlap"
  return ann


def score(ref: dict, hyp: dict, uem: dict | None = None, collar: float = 0.0,
          skip_overlap: bool = False) -> dict:
  """Score every reference uri. Returns {'total': {...}, 'files': {uri: {...}},
  'speakers': {uri/speaker: {precision, recall, f1}}}."""
  der = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
  jer = JaccardErrorRate(collar=collar, skip_overlap=skip_overlap)
  osd = DetectionPrecisionRecallFMeasure(collar=collar)
  files, speakers = {}, {}
  for uri in sorted(ref):
    r = to_annotation(ref[uri], uri)
    h = to_annotation(hyp.get(uri, []), uri)
    if uem and uri in uem:
      extent = Timeline([Segment(s, e) for s, e in uem[uri]], uri=uri)
    else:   # no UEM: score from 0 to the last turn of either side
      end = max([t.offset for t in ref[uri]] + [t.offset for t in hyp.get(uri, [])])
      extent = Timeline([Segment(0.0, end)], uri=uri)
    d = der(r, h, uem=extent, detailed=True)
    j = jer(r, h, uem=extent)
    osd(_as_detection(overlap_timeline(r), uri), _as_detection(overlap_timeline(h), uri),
        uem=extent)   # accumulated; totals read below
    total = max(d["total"], 1e-9)
    files[uri] = dict(der=d["diarization error rate"], missed=d["missed detection"] / total,
                      false_alarm=d["false alarm"] / total, confusion=d["confusion"] / total,
                      jer=j, scored_seconds=d["total"])
    mapping = der.optimal_mapping(r, h, uem=extent)          # hyp label -> ref label
    inverse = {v: k for k, v in mapping.items()}
    for spk in r.labels():
      ref_tl = r.label_timeline(spk).crop(extent)
      hyp_tl = h.label_timeline(inverse[spk]).crop(extent) if spk in inverse else Timeline()
      tp = ref_tl.crop(hyp_tl).duration() if hyp_tl else 0.0
      p = tp / hyp_tl.duration() if hyp_tl and hyp_tl.duration() else 0.0
      rec = tp / ref_tl.duration() if ref_tl.duration() else 0.0
      speakers[f"{uri}/{spk}"] = dict(precision=p, recall=rec,
                                      f1=2 * p * rec / (p + rec) if p + rec else 0.0)
  totals = abs(der)
  comp = der[:]   # accumulated components
  total = max(comp["total"], 1e-9)
  osd_total = osd[:]
  result = dict(total=dict(
      der=totals, missed=comp["missed detection"] / total, false_alarm=comp["false alarm"] / total,
      confusion=comp["confusion"] / total, jer=abs(jer), scored_seconds=comp["total"],
      osd_precision=osd_total["relevant retrieved"] / osd_total["retrieved"]
      if osd_total["retrieved"] else 0.0,
      osd_recall=osd_total["relevant retrieved"] / osd_total["relevant"]
      if osd_total["relevant"] else 0.0),
      files=files, speakers=speakers)
  return result


def format_table(result: dict) -> str:
  rows = [("file", "DER%", "miss%", "FA%", "conf%", "JER%")]
  for uri, f in list(result["files"].items()) + [("TOTAL", result["total"])]:
    rows.append((uri, *(f"{100 * f[k]:.2f}" for k in
                        ("der", "missed", "false_alarm", "confusion", "jer"))))
  width = [max(len(r[i]) for r in rows) for i in range(6)]
  lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                     enumerate(zip(r, width))) for r in rows]
  t = result["total"]
  lines.append(f"OSD precision {100 * t['osd_precision']:.2f}%  recall "
               f"{100 * t['osd_recall']:.2f}%")
  return "\n".join(lines)
