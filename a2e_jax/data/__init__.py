"""Data: the clip/batch contract, manifests, TFDS builders, DTW pairing, the grain input pipeline."""
