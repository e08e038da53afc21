"""The detector's letterbox (separable, rows then columns) against the general bilinear crop."""

import numpy as np

from a2e_jax.vision import detector, geometry


def test_letterbox_is_the_bilinear_crop_with_black_outside():
  rng = np.random.default_rng(0)
  for height, width in ((37, 90), (200, 60), (128, 128), (301, 512)):
    image = rng.integers(1, 256, (height, width, 3), np.uint8)  # no black pixel of its own
    rect = detector.letterbox_rect(height, width)
    # The same crop through the per-pixel gather, on a copy framed in black wider than the letterbox reaches.
    margin = max(height, width)
    framed = np.pad(image, ((margin, margin), (margin, margin), (0, 0)))
    shifted = rect + np.array([margin, margin, 0, 0, 0], np.float32)
    want = np.asarray(geometry.crop(framed, shifted, detector.INPUT_SIZE)) / 127.5 - 1.0
    got = np.asarray(detector.letterbox(image[None]))[0]
    assert got.shape == (detector.INPUT_SIZE, detector.INPUT_SIZE, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (got == -1.0).any() == (height != width)  # black bars only where the image is not square
