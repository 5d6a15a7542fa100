"""The HTTP service (`app`; the command: `python -m jaxdiar.serve`)."""
