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


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
  """(output size, padding before, padding after) of TF's SAME padding: the extra pixel goes after."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return out, total // 2, total - total // 2


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
    (out_h, *pad_h), (out_w, *pad_w) = (same_padding(n, 3, self.stride) for n in x_bhwc.shape[1:3])
    padded = jnp.pad(x_bhwc, ((0, 0), pad_h, pad_w, (0, 0)))
    out = bias
    for dy in range(3):
      for dx in range(3):
        window = padded[:, dy:dy + (out_h - 1) * self.stride + 1:self.stride,
                        dx:dx + (out_w - 1) * self.stride + 1:self.stride]
        out = out + window * kernel[dy, dx, 0]
    return out


class PatchConv(nn.Module):
  """A k×k convolution (TF SAME padding) as one matrix product over its gathered patches (im2col).

  XLA:CPU's own convolution is slow on few input channels: BlazeFace's 5×5 stride-2 stem over RGB took
  3/4 of the detector's time, 4–5× longer than k² strided slices side by side (the patches [B,H',W',k²·C_in],
  ordered as the kernel) and one product with the kernel as a [k²·C_in, C_out] matrix. Parameters as
  nn.Conv's: kernel [k,k,C_in,C_out], bias [C_out].
  """

  features: int
  kernel: int
  stride: int = 1

  @nn.compact
  def __call__(self, x_bhwc):
    k, s = self.kernel, self.stride
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, x_bhwc.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    (out_h, *pad_h), (out_w, *pad_w) = (same_padding(n, k, s) for n in x_bhwc.shape[1:3])
    x_bhwc = jnp.pad(x_bhwc, ((0, 0), pad_h, pad_w, (0, 0)))
    # Columns first, then rows (the second step moves k·C_in floats at a time): 30 % faster than k² slices.
    columns = jnp.concatenate([x_bhwc[:, :, dx:dx + (out_w - 1) * s + 1:s] for dx in range(k)], -1)
    patches = jnp.concatenate([columns[:, dy:dy + (out_h - 1) * s + 1:s] for dy in range(k)], -1)
    return jnp.einsum("bhwk,ko->bhwo", patches, kernel.reshape(-1, self.features)) + bias


def conv(name: str, features: int, kernel: int = 1, stride: int = 1, padding: str = "VALID") -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding, name=name)


def stem(name: str, features: int, kernel: int) -> PatchConv:
  """The first layer of each network: a k×k stride-2 SAME convolution over the RGB input."""
  return PatchConv(features, kernel, 2, name=name)


def residual(x_bhwc, y_bhwc, stride: int):
  """x's skip path (max-pooled when the block strides, channels zero-padded at the end) plus y."""
  if stride == 2:
    # 2×2 max-pool as the maximum of four strided slices, which XLA fuses into the block's sum; its
    # reduce_window (nn.max_pool) ran as separate loops, 14 % of both networks' time in a profile.
    x_bhwc = jnp.maximum(jnp.maximum(x_bhwc[:, 0::2, 0::2], x_bhwc[:, 0::2, 1::2]),
                         jnp.maximum(x_bhwc[:, 1::2, 0::2], x_bhwc[:, 1::2, 1::2]))
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
