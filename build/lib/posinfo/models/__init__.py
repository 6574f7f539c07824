"""Models: encoders, the book's pre-trained encoders, the dense network, the segmenter, GAPNet/PermuteNet,
AugShift's classifiers and the corner network."""
