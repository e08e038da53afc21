"""Faces in pictures: MediaPipe's face detector, 468-point face mesh and iris networks in JAX.

The stable entry points (other packages build on these; keep their signatures):

    from a2e_jax import vision

    models = vision.load_models()                            # weights from a2e_jax/assets/mediapipe
    faces = vision.landmarks_from_images(models, images)     # [B,H,W,3] uint8 → FaceLandmarks; jittable
    faces, state = vision.track(models, frames, vision.initial_state())   # video mode over [T,H,W,3]

    lm = vision.Landmarker()          # host driver: numpy in/out, fixed-shape batches, one compile per size
    faces = lm.images(images)         # image mode (every image through the detector)
    faces = lm.video(frames)          # video mode (previous landmarks give the next crop)

`FaceLandmarks` (all leading axis B): found [B] bool, presence [B], detected [B], rect [B,5] (crop centre
x, y, width, height in pixels, rotation), box [B,4] (xmin, ymin, xmax, ymax of the points), points
[B,468,3] (x, y image pixels with pixel centres at integers; z relative depth on x's scale), iris [B,2,5,3]
and eye_contour [B,2,71,3] (the subject's right eye first). Indices follow MediaPipe's canonical face mesh.
`vision.measures` turns them into eye openness, gaze, inner-lip gap and mouth width.
"""

from a2e_jax.vision.pipeline import (
  FaceLandmarks,
  Landmarker,
  Models,
  TrackState,
  initial_state,
  landmarks_from_images,
  load_models,
  track,
)

__all__ = ["FaceLandmarks", "Landmarker", "Models", "TrackState", "initial_state", "landmarks_from_images",
           "load_models", "track"]
