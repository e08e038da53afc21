"""Reference landmarks from MediaPipe's own face-mesh solution, for tests/test_vision_mediapipe.py.

Run once in a separate environment (mediapipe 0.10.21 needs numpy < 2, so it cannot live beside jax):

    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21 imageio-ffmpeg==0.7.0 pillow
    /tmp/mpvenv/bin/python tools/mediapipe_reference.py ../shared --out tests/data/mediapipe_reference.npz

For the portraits (static_image_mode=True) and every frame of the video (static_image_mode=False, i.e.
tracking), with max_num_faces=1 and refine_landmarks=False (the plain face_landmark.tflite), it stores the
468 points' x, y in pixels as uint16 sixteenths of a pixel (NaN-free: frames without a face are flagged in
`*_found`). The video is decoded by imageio-ffmpeg's ffmpeg to rgb24, as a2e_jax reads it (mediapy with the
same ffmpeg), so both see the same pixels.
"""

import argparse
import os

import numpy as np

PORTRAITS = ("portrait_close_256.png", "portrait_offcentre_640x896.png", "full_body_800x1200.png")
VIDEO = "video/talking_head_en_8s.mp4"
SUBPIXEL = 16


def read_video(path):
  import imageio_ffmpeg

  reader = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
  meta = next(reader)
  width, height = meta["size"]
  return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader])


def landmarks(face_mesh, image):
  """(found, [468, 2] pixels) from MediaPipe's solution."""
  result = face_mesh.process(image)
  if not result.multi_face_landmarks:
    return False, np.zeros((468, 2))
  height, width = image.shape[:2]
  points = result.multi_face_landmarks[0].landmark
  return True, np.array([[p.x * width, p.y * height] for p in points])


def encode(points):
  return np.round(np.clip(points, 0, 4095) * SUBPIXEL).astype(np.uint16)


def main():
  import mediapipe as mp
  from PIL import Image

  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("shared", help="the ../shared folder")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  out = {"subpixel": np.array(SUBPIXEL), "mediapipe_version": np.array(mp.__version__)}
  with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as face_mesh:
    for name in PORTRAITS:
      image = np.asarray(Image.open(os.path.join(args.shared, "portraits", name)).convert("RGB"))
      found, points = landmarks(face_mesh, image)
      key = os.path.splitext(name)[0]
      out[f"{key}_found"], out[f"{key}_points"] = np.array(found), encode(points)
  frames = read_video(os.path.join(args.shared, VIDEO))
  with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as face_mesh:
    results = [landmarks(face_mesh, frame) for frame in frames]
  out["video_found"] = np.array([f for f, _ in results])
  out["video_points"] = encode(np.stack([p for _, p in results]))
  np.savez_compressed(args.out, **out)
  print(f"wrote {args.out}: {len(PORTRAITS)} portraits, {len(frames)} frames "
        f"({out['video_found'].sum()} with a face), mediapipe {mp.__version__}")


if __name__ == "__main__":
  main()
