"""Offline decoding, as stages over a recording:

- `settings`: every decoding setting declared once (type, defaults, range, meaning);
- `windows`: read the recording in windows and run the model (`infer` -> `Inference`);
- `local`: a window's local speakers: where each talks alone, its direction, how long it is
  heard, its audio for a d-vector;
- `cluster`: the windows' local speakers into the recording's speakers;
- `pieces`: the local speakers cut at their pauses, each piece given to the cluster it
  sounds like;
- `frames`: per-frame decisions (count, thresholds, runs, turns, exclusive);
- `refine`: spatial split and merge of speakers;
- `decode`: the stages in order (cluster -> stitch -> decide -> split -> resegment -> merge ->
  gate -> turns), `diarize` = `infer` + `decode`;
- `enroll`: enrolled speakers' voiceprints and the naming of clustered talkers.

`jaxdiar.pipeline.Pipeline` is the user-facing object over them; `jaxdiar.diarize` keeps the
names of all of them (and the command line) for existing code.
"""
