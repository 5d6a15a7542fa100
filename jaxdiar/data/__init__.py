"""Everything that touches audio files and corpora."""
