"""Offline decoding, as stages over a recording:

- `windows`: read the recording in windows and run the model (`infer` -> `Inference`);
- `cluster`: the windows' local speakers into the recording's speakers;
- `frames`: per-frame decisions (count, thresholds, runs, turns, exclusive);
- `refine`: spatial split and merge of speakers;
- `decode`: the stages in order (cluster -> stitch -> decide -> split -> resegment -> merge ->
  gate -> turns), `diarize` = `infer` + `decode`.

`jaxdiar.pipeline.Pipeline` is the user-facing object over them; `jaxdiar.diarize` keeps the
names of all of them (and the command line) for existing code.
"""
