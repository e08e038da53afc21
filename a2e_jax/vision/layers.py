"""The building blocks MediaPipe's face networks share, and their converted weights.

All three networks (BlazeFace, Face Mesh, iris) are stacks of residual blocks over NHWC images: a depthwise
3×3 convolution (TF "SAME" padding, stride 1 or 2), a 1×1 convolution, a skip path that max-pools by 2 when
the block strides and zero-pads the channels at the end when it widens, then ReLU or PReLU. Layers take
their TFLite names (`conv2d_4`, `depthwise_conv2d_3`, `p_re_lu_4`) so the converted weights
(tools/convert_mediapipe.py → a2e_jax/assets/mediapipe/*.npz, already in Flax's layout) load as they are.
"""

import functools
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "mediapipe")


def tflite_name(base: str, index: int) -> str:
  """TFLite's Keras-style layer names: `conv2d`, `conv2d_1`, ..."""
  return base if index == 0 else f"{base}_{index}"


class PReLU(nn.Module):
  """max(x, 0) + alpha·min(x, 0) with one slope per channel."""

  @nn.compact
  def __call__(self, x):
    alpha = self.param("alpha", nn.initializers.constant(0.25), (x.shape[-1],))
    return jnp.where(x >= 0, x, alpha * x)


class DepthwiseConv(nn.Module):
  """A depthwise 3×3 convolution with TF's SAME padding, written as nine shifted multiply-adds.

  XLA's CPU backend runs grouped convolutions (feature_group_count = channels) several times slower than
  this sum of shifted slices; the kernel layout [3,3,1,C] and the parameter names match nn.Conv's.
  """

  stride: int = 1

  @nn.compact
  def __call__(self, x_bhwc):
    channels = x_bhwc.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, 1, channels))
    bias = self.param("bias", nn.initializers.zeros, (channels,))
    height, width = x_bhwc.shape[1:3]
    out_h, out_w = -(-height // self.stride), -(-width // self.stride)
    # TF SAME: the total padding is split with the extra pixel at the bottom/right.
    pad_h = max((out_h - 1) * self.stride + 3 - height, 0)
    pad_w = max((out_w - 1) * self.stride + 3 - width, 0)
    pads = ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    padded = jnp.pad(x_bhwc, pads)
    out = bias
    for dy in range(3):
      for dx in range(3):
        window = padded[:, dy:dy + (out_h - 1) * self.stride + 1:self.stride,
                        dx:dx + (out_w - 1) * self.stride + 1:self.stride]
        out = out + window * kernel[dy, dx, 0]
    return out


def conv(name: str, features: int, kernel: int = 1, stride: int = 1, padding: str = "VALID") -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding, name=name)


def residual(x_bhwc, y_bhwc, stride: int):
  """x's skip path (max-pooled when the block strides, channels zero-padded at the end) plus y."""
  if stride == 2:
    x_bhwc = nn.max_pool(x_bhwc, (2, 2), strides=(2, 2), padding="VALID")
  extra = y_bhwc.shape[-1] - x_bhwc.shape[-1]
  if extra:
    x_bhwc = jnp.pad(x_bhwc, ((0, 0), (0, 0), (0, 0), (0, extra)))
  return x_bhwc + y_bhwc


def blaze_block(x_bhwc, features: int, stride: int, dw: str, pw: str, act):
  """depthwise 3×3 → 1×1 → + skip → act (the BlazeFace / Face Mesh block)."""
  y = conv(pw, features)(DepthwiseConv(stride, name=dw)(x_bhwc))
  return act(residual(x_bhwc, y, stride))


@functools.cache
def load_weights(model: str) -> tuple[dict, dict]:
  """({"params": {layer: {name: float32 array}}}, metadata) of a converted model (`face_landmark`, ...)."""
  path = os.path.join(ASSET_DIR, f"{model}.npz")
  params: dict = {}
  with np.load(path, allow_pickle=False) as data:
    meta = json.loads(str(data["__meta__"]))
    for key in data.files:
      if key != "__meta__":
        layer, name = key.split("/")
        params.setdefault(layer, {})[name] = jnp.asarray(data[key], jnp.float32)
  return {"params": params}, meta


def check_params(module: nn.Module, variables: dict, *input_shape: int) -> None:
  """Raises unless `variables` has exactly the shapes `module.init` would make (catches a wrong port)."""
  abstract = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros(input_shape, jnp.float32))
  want = jax.tree_util.tree_map(lambda a: a.shape, abstract)
  have = jax.tree_util.tree_map(lambda a: a.shape, variables)
  if want != have:
    raise ValueError(f"{type(module).__name__}: converted weights do not fit the network")
