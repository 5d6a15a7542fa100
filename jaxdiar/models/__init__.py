"""Model files and pretrained networks: the runtime that loads a .jaxdiar file, the export that
writes one, the bundled models, the ported speech detector and speaker encoder."""
