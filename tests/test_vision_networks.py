"""MediaPipe's three networks in Flax against LiteRT running the same .tflite files (the oracle).

The .tflite files come from the pinned mediapipe wheel, downloaded once with pip into a cache
(tools/convert_mediapipe.py's fetch_tflite; CI has the same package index). Inputs: random tensors, and real
faces cut from ../shared's portraits by the JAX pipeline (skipped when ../shared is absent).
"""

import json

import jax
import numpy as np
import pytest
from conftest import SHARED, tool_module

from a2e_jax.vision import layers, networks

SIZES = {"face_detection_short_range": (128, -1.0), "face_landmark": (192, 0.0), "iris_landmark": (64, 0.0)}


@pytest.fixture(scope="module")
def converter():
  return tool_module("convert_mediapipe")


@pytest.fixture(scope="module")
def tflite_paths(converter):
  try:
    return converter.fetch_tflite()
  except RuntimeError as e:
    pytest.skip(f"the mediapipe wheel with the .tflite files cannot be fetched: {e}")


def litert(path, inputs_bhwc):
  """LiteRT's outputs for each input image (batch 1 each), as {output name: [B, ...]}."""
  from ai_edge_litert.interpreter import Interpreter

  interpreter = Interpreter(str(path))
  interpreter.allocate_tensors()
  index = interpreter.get_input_details()[0]["index"]
  outputs = {}
  for image in inputs_bhwc:
    interpreter.set_tensor(index, image[None].astype(np.float32))
    interpreter.invoke()
    for detail in interpreter.get_output_details():
      outputs.setdefault(detail["name"], []).append(interpreter.get_tensor(detail["index"])[0])
  return {k: np.stack(v) for k, v in outputs.items()}


def flax_outputs(name, inputs_bhwc):
  module, variables = networks.load(name)
  return [np.asarray(a) for a in jax.jit(module.apply)(variables, inputs_bhwc.astype(np.float32))]


def compare(name, path, inputs_bhwc):
  ours = flax_outputs(name, inputs_bhwc)
  theirs = litert(path, inputs_bhwc)
  for out in ours:
    # Match outputs by size (LiteRT names and orders them its own way).
    ref = next(v for v in theirs.values() if v.size == out.size).reshape(out.shape)
    scale = np.abs(ref).max()
    assert np.abs(out - ref).max() <= 1e-3 * scale, f"{name}: {np.abs(out - ref).max()} vs scale {scale}"
    if out.shape[-1] == 1404:
      xy = out.reshape(len(out), 468, 3)[..., :2] - ref.reshape(len(out), 468, 3)[..., :2]
      assert np.abs(xy).max() <= 0.2, f"landmarks differ by {np.abs(xy).max()} px in the 192 crop"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SIZES))
def test_random_inputs_match_litert(name, tflite_paths):
  size, low = SIZES[name]
  inputs = np.random.default_rng(0).uniform(low, 1.0, (3, size, size, 3))
  compare(name, tflite_paths[name], inputs)


@pytest.mark.slow
def test_real_faces_match_litert(tflite_paths):
  """The crops the pipeline feeds each network, from real portraits."""
  from PIL import Image

  from a2e_jax.vision import detector, geometry, iris, mesh, pipeline

  folder = SHARED / "portraits"
  if not folder.exists():
    pytest.skip(f"optional test data {folder} is absent (see ../shared/*/README.md)")
  models = pipeline.load_models()
  run = jax.jit(lambda image: pipeline.landmarks_from_images(models, image, eyes=False))
  inputs = {name: [] for name in SIZES}
  for path in sorted(folder.glob("*.png")):
    image = np.asarray(Image.open(path).convert("RGB"))[None]
    result = run(image)
    assert bool(result.found[0]), path
    inputs["face_detection_short_range"].append(detector.letterbox(image)[0])
    inputs["face_landmark"].append(geometry.crop(image[0], result.rect[0], mesh.INPUT_SIZE) / 255.0)
    inputs["iris_landmark"] += [geometry.crop(image[0], r, iris.INPUT_SIZE) / 255.0
                                for r in iris.eye_rects(result.points)[0]]
  for name, crops in inputs.items():
    compare(name, tflite_paths[name], np.stack(crops))

@pytest.mark.slow
def test_assets_are_the_converted_wheel(converter, tflite_paths, tmp_path):
  """Converting the pinned wheel again gives the committed assets, value for value, with its provenance."""
  converter.convert(converter.download_wheel(), tmp_path)
  for name in SIZES:
    kept_path = f"{layers.ASSET_DIR}/{name}.npz"
    with np.load(tmp_path / f"{name}.npz") as fresh, np.load(kept_path) as kept:
      assert sorted(fresh.files) == sorted(kept.files)
      for key in fresh.files:
        np.testing.assert_array_equal(fresh[key], kept[key], err_msg=key)
      meta = json.loads(str(kept["__meta__"]))
      assert meta["source"]["wheel_sha256"] == converter.WHEEL_SHA256
  assert "Apache License" in (tmp_path / "LICENSE").read_text()
