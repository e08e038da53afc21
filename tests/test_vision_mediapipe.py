"""The JAX face pipeline end to end against MediaPipe's own face-mesh solution.

tests/data/mediapipe_reference.npz holds the 468 points MediaPipe 0.10.21 found on ../shared's portraits
(static image mode) and on every frame of its talking-head video (tracking mode); tools/mediapipe_reference.py
wrote it in a separate environment. Errors are point distances over the reference's inter-ocular distance
(between the eye centres, each the mean of its two corners), judged frame by frame.
"""

import pathlib

import numpy as np
import pytest
from conftest import require_shared

pytestmark = pytest.mark.slow  # runs the MediaPipe networks on real media

REFERENCE = pathlib.Path(__file__).parent / "data" / "mediapipe_reference.npz"
PORTRAITS = ("portrait_close_256", "portrait_offcentre_640x896", "full_body_800x1200")


@pytest.fixture(scope="module")
def reference():
  with np.load(REFERENCE) as data:
    return {k: data[k] for k in data.files}


def relative_errors(ours_n3, theirs_n2):
  """[N] distances between the two point sets over the reference's inter-ocular distance."""
  from a2e_jax.vision.measures import interocular

  return np.linalg.norm(ours_n3[:, :2] - theirs_n2, axis=-1) / interocular(theirs_n2)


def check_frame(ours_n3, theirs_n2, what):
  errors = relative_errors(ours_n3, theirs_n2)
  assert np.median(errors) <= 0.015 and np.percentile(errors, 95) <= 0.03, (
    f"{what}: median {np.median(errors):.4f}, 95th percentile {np.percentile(errors, 95):.4f} of the IOD")


def test_portraits_match_mediapipe(reference):
  from PIL import Image

  from a2e_jax.vision import Landmarker

  landmarker = Landmarker(eyes=False, batch=1)
  for name in PORTRAITS:
    image = np.asarray(Image.open(require_shared(f"portraits/{name}.png")).convert("RGB"))
    faces = landmarker.images(image[None])
    assert faces.found[0] == reference[f"{name}_found"], name
    check_frame(faces.points[0], reference[f"{name}_points"] / reference["subpixel"], name)


def test_video_tracking_matches_mediapipe(reference):
  from a2e_jax.vision import Landmarker
  from a2e_jax.vision.media import read_frames

  frames = read_frames(require_shared("video/talking_head_en_8s.mp4"))
  faces = Landmarker(eyes=False, batch=32).video(frames)
  np.testing.assert_array_equal(faces.found, reference["video_found"])
  # Video mode: the detector ran on the first frame only, the landmarks carried the face after it.
  assert faces.detected[0] and not faces.detected[1:].any()
  truth = reference["video_points"] / reference["subpixel"]
  for t in np.flatnonzero(faces.found):
    check_frame(faces.points[t], truth[t], f"frame {t}")
