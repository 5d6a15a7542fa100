"""Files in and out: atomic writes, RTTM/UEM, output formats, transcripts, config files, figures."""
