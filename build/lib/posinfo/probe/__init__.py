"""Probing frozen networks: the readout, multi-level features, position channels, and the probing
that chapters 1-4 share."""
