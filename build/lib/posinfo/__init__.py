"""posinfo: the library behind the book "Where do CNNs keep absolute position?".

A shared core and one module per chapter (the map from each chapter to its code is in
``lib/posinfo/README.md``):

- :mod:`posinfo.data`: position targets, generated scenes and streets, grid inputs, the real
  datasets and their loaders.
- :mod:`posinfo.models`: encoders, the book's pre-training, the dense network, the segmenter,
  GAPNet/PermuteNet, AugShift's classifiers, the corner network.
- :mod:`posinfo.probe`: the readout (PosENet), multi-level features, position channels, and the
  probing chapters 1-4 share.
- :mod:`posinfo.metrics`: position scores, dense-task scores, shift consistency.
- :mod:`posinfo.book`: parameters and profiles, results and verdicts, the chapter contract, the
  generated pages, figures, the explorer, the papers' tables.
- :mod:`posinfo.cache`: atomic writes, fingerprints, safe loading, and the one helper that trains,
  checkpoints, resumes and caches a network.
- :mod:`posinfo.chapters`: ``chNN_<name>`` runs ``book/NN_<name>.ipynb``; no chapter module
  imports another.
"""

__version__ = "0.1.0"
