"""MediaPipe's face detector, face mesh and iris networks → npz weight assets for a2e_jax.vision.

    python tools/convert_mediapipe.py      # downloads the wheel with pip, writes a2e_jax/assets/mediapipe/

The three `.tflite` files ship inside the `mediapipe==0.10.21` wheel under `mediapipe/modules/` (later wheels
no longer carry them). The wheel is fetched with `pip download --no-deps` for one fixed platform, so the same
file (whose sha256 is pinned below) comes back everywhere; its flatbuffers are read with the `tflite`
package. For every CONV_2D, DEPTHWISE_CONV_2D and PRELU the weights (fp16, stored as they are) are written
under the layer's own TFLite name, already in Flax's layout: a convolution's [O,H,W,I] kernel as [H,W,I,O],
a depthwise [1,H,W,C] kernel as [H,W,1,C], a PReLU's [1,1,C] slope as [C]. Each npz holds `__meta__`, a JSON
string (no pickle) with the wheel's name and sha256, the .tflite file's path and sha256, and every layer's
op, stride and padding. MediaPipe's Apache-2.0 LICENSE and a NOTICE go beside them.

The tests reuse `fetch_tflite` (a cached download) to run the same .tflite files with LiteRT as the oracle.
"""

import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np

WHEEL = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
MODELS = {
  "face_detection_short_range": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
  "face_landmark": "mediapipe/modules/face_landmark/face_landmark.tflite",
  "iris_landmark": "mediapipe/modules/iris_landmark/iris_landmark.tflite",
}
REPO = pathlib.Path(__file__).resolve().parents[1]
ASSET_DIR = REPO / "a2e_jax" / "assets" / "mediapipe"

def _default_cache() -> pathlib.Path:
  """The project's cache folder (core/paths.py: $A2E_CACHE_DIR, else ~/.cache/a2e_jax) / mediapipe."""
  sys.path.insert(0, str(REPO))
  from a2e_jax.core.paths import cache_dir

  return pathlib.Path(cache_dir()) / "mediapipe"


NOTICE = """\
The files in this folder are weights converted by tools/convert_mediapipe.py from MediaPipe's models
{models}
as shipped in {wheel} (sha256 {sha}).

MediaPipe
Copyright 2019-2024 The MediaPipe Authors.
Licensed under the Apache License, Version 2.0 (LICENSE in this folder).

Modifications: the TFLite flatbuffers were parsed and their fp16 weights rewritten, unchanged in value,
as NumPy arrays in Flax's kernel layout.
"""


def sha256(path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def download_wheel(cache_dir=None) -> pathlib.Path:
  """The pinned mediapipe wheel in `cache_dir` (downloaded with pip the first time); checks its sha256."""
  cache_dir = pathlib.Path(cache_dir or _default_cache())
  wheel = cache_dir / WHEEL
  if not wheel.exists():
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--dest", str(cache_dir),
               "mediapipe==0.10.21"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.exists():
      tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
      raise RuntimeError(f"pip could not download mediapipe==0.10.21 ({tail})")
  digest = sha256(wheel)
  if digest != WHEEL_SHA256:
    raise RuntimeError(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}; delete it and retry")
  return wheel


def fetch_tflite(cache_dir=None) -> dict[str, pathlib.Path]:
  """{model name: path} of the three .tflite files, extracted from the cached wheel."""
  cache_dir = pathlib.Path(cache_dir or _default_cache())
  paths = {name: cache_dir / os.path.basename(member) for name, member in MODELS.items()}
  if not all(p.exists() for p in paths.values()):
    with zipfile.ZipFile(download_wheel(cache_dir)) as archive:
      for name, member in MODELS.items():
        paths[name].write_bytes(archive.read(member))
  return paths


def _op_names() -> dict[int, str]:
  from tflite.BuiltinOperator import BuiltinOperator

  return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def read_layers(tflite_bytes: bytes) -> tuple[dict[str, np.ndarray], dict[str, dict], dict]:
  """(weights {"layer/kernel": array}, layers {layer: {op, stride, padding}}, io) from a .tflite model."""
  import tflite

  model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
  graph = model.Subgraphs(0)
  op_names = _op_names()
  dtypes = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.FLOAT32: np.float32,
            tflite.TensorType.INT32: np.int32}

  def constant(index):
    tensor = graph.Tensors(index)
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    return np.frombuffer(data.tobytes(), dtypes[tensor.Type()]).reshape(tensor.ShapeAsNumpy())

  ops = []
  for i in range(graph.OperatorsLength()):
    op = graph.Operators(i)
    code = model.OperatorCodes(op.OpcodeIndex())
    ops.append((op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())], op))
  # fp16 weights reach their layer through a DEQUANTIZE op; follow it back to the stored tensor.
  source = {int(op.Outputs(0)): int(op.Inputs(0)) for name, op in ops if name == "DEQUANTIZE"}

  def weight(index):
    index = source.get(index, index)
    return graph.Tensors(index).Name().decode().split("/")[0], constant(index)

  weights, layers = {}, {}
  for name, op in ops:
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU"):
      continue
    layer, first = weight(int(op.Inputs(1)))
    if name == "PRELU":
      weights[f"{layer}/alpha"] = first.reshape(-1)
      layers[layer] = {"op": name}
      continue
    options_cls = tflite.Conv2DOptions if name == "CONV_2D" else tflite.DepthwiseConv2DOptions
    options = options_cls()
    table = op.BuiltinOptions()
    options.Init(table.Bytes, table.Pos)
    if options.FusedActivationFunction() != 0 or options.DilationHFactor() != 1:
      raise ValueError(f"{layer}: fused activations and dilation are not expected in these models")
    kernel = first.transpose(1, 2, 3, 0) if name == "CONV_2D" else first.transpose(1, 2, 0, 3)
    weights[f"{layer}/kernel"] = kernel
    weights[f"{layer}/bias"] = weight(int(op.Inputs(2)))[1]
    layers[layer] = {"op": name, "stride": [options.StrideH(), options.StrideW()],
                     "padding": "SAME" if options.Padding() == tflite.Padding.SAME else "VALID"}

  def describe(indices):
    return [{"name": graph.Tensors(int(i)).Name().decode(),
             "shape": [int(s) for s in graph.Tensors(int(i)).ShapeAsNumpy()]} for i in indices]

  io = {"inputs": describe(graph.InputsAsNumpy()), "outputs": describe(graph.OutputsAsNumpy())}
  return weights, layers, io


def convert(wheel: pathlib.Path, out_dir: pathlib.Path = ASSET_DIR) -> list[pathlib.Path]:
  """Writes <model>.npz for the three models, LICENSE and NOTICE into `out_dir`; returns the npz paths."""
  out_dir.mkdir(parents=True, exist_ok=True)
  written = []
  with zipfile.ZipFile(wheel) as archive:
    for name, member in MODELS.items():
      data = archive.read(member)
      weights, layers, io = read_layers(data)
      meta = {"model": name, "source": {"wheel": wheel.name, "wheel_sha256": sha256(wheel), "member": member,
                                        "tflite_sha256": hashlib.sha256(data).hexdigest()},
              "license": "Apache-2.0 (LICENSE, NOTICE beside this file)", "io": io, "layers": layers}
      path = out_dir / f"{name}.npz"
      np.savez_compressed(path, __meta__=np.array(json.dumps(meta, sort_keys=True)), **weights)
      written.append(path)
    license_member = next(n for n in archive.namelist() if n.endswith(".dist-info/LICENSE"))
    (out_dir / "LICENSE").write_bytes(archive.read(license_member))
  models = ", ".join(os.path.basename(m) for m in MODELS.values())
  (out_dir / "NOTICE").write_text(NOTICE.format(models=models, wheel=wheel.name, sha=WHEEL_SHA256))
  return written


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--wheel", type=pathlib.Path, help=f"a downloaded {WHEEL} (default: pip download)")
  parser.add_argument("--cache", type=pathlib.Path, help="download folder (default: the a2e_jax cache)")
  parser.add_argument("--out", type=pathlib.Path, default=ASSET_DIR, help="asset folder")
  args = parser.parse_args(argv)
  wheel = args.wheel or download_wheel(args.cache)
  if sha256(wheel) != WHEEL_SHA256:
    print(f"convert_mediapipe: {wheel} is not the pinned {WHEEL} (sha256 differs)", file=sys.stderr)
    return 2
  for path in convert(wheel, args.out):
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
