"""The pure parts: features, the model, losses, frame metrics, SRP-PHAT directions, the
spatial resegmentation, array geometries and pyannote.metrics scoring."""
