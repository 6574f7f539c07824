"""posinfo: the library behind the book "Where do CNNs keep absolute position?".

One concept per module:

- :mod:`posinfo.targets`: ground-truth position maps (H, V, G, HS, VS) and synthetic inputs.
- :mod:`posinfo.scenes`: the embedded dataset of generated scenes.
- :mod:`posinfo.datasets`: real datasets for the paper profile.
- :mod:`posinfo.encoders`: VGG16 / ResNet multi-level feature extractors with switchable padding.
- :mod:`posinfo.pretrain`: the book's "synthetic" encoders, trained once on the scenes and cached.
- :mod:`posinfo.features`: computing frozen features once and caching them.
- :mod:`posinfo.readout`: the position-encoding readout (PosENet) and its least-squares bound.
- :mod:`posinfo.metrics`: SPC and MAE.
- :mod:`posinfo.params`: chapter parameters and profiles.
- :mod:`posinfo.results`: results tables, claims and figures written by each chapter.
"""

__version__ = "0.1.0"
