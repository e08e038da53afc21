"""The built-in face, rendered and pasted into photo-like scenes, is found and its mouth opening measured.

Scenes: the face (known pose and jaw opening) rendered once at 448 px, resized to 80–400 px face width,
pasted anywhere in a 512×512 background of smooth colour fields and shapes, with sensor noise and JPEG
compression. The truth for the mouth is the rendered mesh's own inner-lip gap (the built-in face's
landmarks 62 and 66) over its inter-ocular distance; the pipeline's inner-lip gap must follow it.
"""

import io

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SCENE = 512
RENDER = 448
WIDTHS = (80, 110, 150, 200, 250, 300, 350, 400)
JAW_SEQUENCE = np.linspace(0.0, 0.8, 12)


def background(rng) -> np.ndarray:
  """[512,512,3] uint8: low-frequency colour fields with a few soft-edged shapes (photographic-ish)."""
  from PIL import Image, ImageDraw, ImageFilter

  field = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
  image = Image.fromarray(field).resize((SCENE, SCENE), Image.BICUBIC)
  pen = ImageDraw.Draw(image)
  for _ in range(6):
    x0, y0 = rng.uniform(-100, SCENE, 2)
    w, h = rng.uniform(40, 250, 2)
    colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
    (pen.ellipse if rng.uniform() < 0.5 else pen.rectangle)((x0, y0, x0 + w, y0 + h), fill=colour)
  detail = rng.normal(0, 6, (SCENE, SCENE, 1))
  return np.clip(np.asarray(image.filter(ImageFilter.GaussianBlur(3)), np.float32) + detail, 0, 255)


def render_faces(model, jaw, angles):
  """(rgb [B,448,448,3] float 0–255, mask [B,448,448], landmarks [B,68,2] pixels) of the built-in face."""
  import jax.numpy as jnp

  from a2e_jax.render import camera as cam_lib
  from a2e_jax.render.pipeline import FaceRenderer

  exp = np.zeros((len(jaw), model.num_exp), np.float32)
  exp[:, model.channel_names.index("jawOpen")] = jaw
  pose = np.concatenate([angles, np.zeros((len(jaw), 3))], 1).astype(np.float32)
  renderer = FaceRenderer(model, size=RENDER, batch=len(jaw))
  images, mask = renderer.render(exp, pose)
  verts = cam_lib.transform(model.vertices(None, jnp.asarray(exp)), jnp.asarray(pose[:, :3]),
                            jnp.asarray(pose[:, 3:]))
  pixels = cam_lib.to_pixels(renderer.camera, cam_lib.project(renderer.camera, verts))
  return np.asarray(images) * 255, np.asarray(mask), np.asarray(pixels)[:, np.asarray(model.landmarks)]


def true_lip_gap(lm_68):
  iod = np.linalg.norm(lm_68[:, [36, 39]].mean(1) - lm_68[:, [42, 45]].mean(1), axis=-1)
  return np.linalg.norm(lm_68[:, 62] - lm_68[:, 66], axis=-1) / iod


def paste(rng, face, mask, lm_68, width):
  """A JPEG-compressed scene with the face resized to `width` px (jaw to jaw) at a random place."""
  from PIL import Image

  span = lm_68[16, 0] - lm_68[0, 0]
  scale = width / span
  size = int(round(RENDER * scale))
  rgba = np.concatenate([face, mask[..., None] * 255.0], -1).astype(np.uint8)
  small = np.asarray(Image.fromarray(rgba).resize((size, size), Image.LANCZOS), np.float32)
  limit = max(SCENE - size, 0)
  x0, y0 = (int(v) for v in rng.integers(0, limit + 1, 2)) if limit else (0, 0)
  crop = small[:SCENE, :SCENE]
  scene = background(rng)
  alpha = crop[..., 3:] / 255.0
  region = scene[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]]
  region[:] = alpha * crop[..., :3] + (1 - alpha) * region
  scene = np.clip(scene + rng.normal(0, 3, scene.shape), 0, 255).astype(np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(scene).save(buffer, "JPEG", quality=int(rng.integers(55, 90)))
  centre = (lm_68[[36, 39, 42, 45]].mean(0)) * scale + [x0, y0]
  return np.asarray(Image.open(buffer).convert("RGB")), centre


def test_built_in_face_is_found_and_its_mouth_measured():
  from a2e_jax.face.registry import resolve_model
  from a2e_jax.vision import Landmarker
  from a2e_jax.vision.measures import measures

  rng = np.random.default_rng(7)
  model = resolve_model("builtin")
  count = len(WIDTHS) + len(JAW_SEQUENCE)
  jaw = np.concatenate([rng.uniform(0, 0.6, len(WIDTHS)), JAW_SEQUENCE])
  angles = rng.uniform(-0.25, 0.25, (count, 3)) * [1.0, 1.0, 0.6]
  faces, masks, lm = render_faces(model, jaw, angles)
  widths = list(WIDTHS) + [220] * len(JAW_SEQUENCE)
  scenes, centres = zip(*(paste(rng, faces[i], masks[i], lm[i], widths[i]) for i in range(count)),
                        strict=True)

  found = Landmarker(eyes=False, batch=count).images(np.stack(scenes))
  assert found.found.all(), f"missed the face at widths {np.asarray(widths)[~found.found]}"
  eye_centres = found.points[:, [33, 133, 362, 263], :2].mean(1)
  offsets = np.linalg.norm(eye_centres - np.asarray(centres), axis=-1) / np.asarray(widths)
  assert offsets.max() < 0.1, f"eyes off by {offsets.max():.2f} face widths"

  ours = measures(found.points)["lip_gap"][len(WIDTHS):]
  truth = true_lip_gap(lm[len(WIDTHS):])
  r = np.corrcoef(ours, truth)[0, 1]
  assert r >= 0.9, f"inner-lip gap follows the rendered mouth with r = {r:.3f}"


def test_blinks_and_gaze_of_the_built_in_face():
  """Closing one eye lowers that eye's openness only; turning both eyes moves the gaze that way."""
  from a2e_jax.face.registry import resolve_model
  from a2e_jax.vision import Landmarker
  from a2e_jax.vision.measures import measures

  model = resolve_model("builtin")
  settings = [{}, {"eyeBlink_R": 1.0}, {"eyeBlink_L": 1.0},  # _R/_L: the subject's right/left eye
              {"eyeLookOut_L": 1.0, "eyeLookIn_R": 1.0}, {"eyeLookIn_L": 1.0, "eyeLookOut_R": 1.0}]
  exp = np.zeros((len(settings), model.num_exp), np.float32)
  for row, channels in zip(exp, settings, strict=True):
    for name, value in channels.items():
      row[model.channel_names.index(name)] = value
  images, _ = render_frontal(model, exp)
  faces = Landmarker(batch=len(settings)).images(images)
  assert faces.found.all()
  got = measures(faces.points, faces.iris, faces.eye_contour)
  openness, gaze_x = got["openness"], got["gaze"][:, 0]
  neutral = openness[0]
  assert openness[1, 0] < 0.5 * neutral[0] and openness[1, 1] > 0.8 * neutral[1], openness
  assert openness[2, 1] < 0.5 * neutral[1] and openness[2, 0] > 0.8 * neutral[0], openness
  # Gaze x points towards the subject's left.
  assert gaze_x[3] > gaze_x[0] + 0.05 and gaze_x[4] < gaze_x[0] - 0.05, gaze_x


def render_frontal(model, exp):
  """([B,256,256,3] uint8 frontal renders on a grey-green background, mask)."""
  from a2e_jax.render.pipeline import FaceRenderer
  from a2e_jax.render.shading import to_uint8

  images, mask = FaceRenderer(model, size=256, batch=len(exp), background=(0.55, 0.6, 0.5)).render(exp)
  return np.asarray(to_uint8(images)), np.asarray(mask)
