"""A2ENet: shapes, size, logical axis names, the β0 residual, eye control, emotion control, masking, bf16."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_helpers import synthetic_batch

from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.models import a2enet, layers

pytestmark = pytest.mark.slow  # compiles A2ENet in every mode: tens of seconds a test

B, T = 2, 12


@pytest.fixture(scope="module")
def tiny():
  config = a2enet.model_config("tiny")
  module = a2enet.A2ENet(config)
  return config, module, _init(module, config)


@pytest.fixture(scope="module")
def view(tiny):
  return synthetic_batch(tiny[0], B, T)["a"]


def _perturbed(variables, seed=1):
  """The same tree with every parameter replaced by random values (no zero-initialised shortcuts)."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda x: 0.2 * rng.standard_normal(x.shape, np.float32), nn.unbox(variables))


def _jit(module, method):
  return jax.jit(functools.partial(module.apply, method=method))


def _init(module, config):
  return jax.jit(module.init)(jax.random.key(0), a2enet.example_view(config))


def test_method_shapes(tiny, view):
  config, module, variables = tiny
  d, k = config.dim, config.num_coeffs
  content = module.apply(variables, view["mel"], view["mask"], method="encode_content")
  assert content.shape == (B, T, d)
  emotion_btd, emotion_bd, logits, intensity = module.apply(variables, view["mel"], view["mask"],
                                                            method="encode_emotion")
  assert (emotion_btd.shape, emotion_bd.shape, logits.shape, intensity.shape) == (
    (B, T, d), (B, d), (B, config.num_emotions), (B,))
  embedded = module.apply(variables, view["emotion"], view["intensity"], method="emotion_embedding")
  assert embedded.shape == (B, d)
  audio = module.apply(variables, content, emotion_bd, view["mask"], method="decode_audio")
  assert audio.shape == (B, T, config.audio_frames, config.mel_bands)
  assert a2enet.audio_target(view["mel"], config.audio_frames).shape == audio.shape
  for emotion in (emotion_bd, emotion_btd):
    coeffs = module.apply(variables, content, emotion, view["beta0"], view["eye"], view["mask"],
                          method="decode_expression")
    assert coeffs.shape == (B, T, k) and coeffs.dtype == jnp.float32
  outputs = module.apply(variables, view)
  assert outputs["coeffs"].shape == (B, T, k)


def test_sizes():
  counts = {}
  for size in ("tiny", "base", "large"):
    config = a2enet.model_config(size)
    shapes = jax.eval_shape(a2enet.A2ENet(config).init, jax.random.key(0), a2enet.example_view(config))
    counts[size] = sum(x.size for x in jax.tree.leaves(nn.unbox(shapes)))
  assert 0.8e6 <= counts["tiny"] <= 1.6e6, counts
  assert counts["tiny"] < counts["base"] < counts["large"], counts
  with pytest.raises(ValueError, match="unknown model size"):
    a2enet.model_config("huge")


def test_every_parameter_has_logical_axis_names(tiny):
  _, _, variables = tiny
  boxes = jax.tree.leaves(variables, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
  assert boxes and all(isinstance(b, nn.LogicallyPartitioned) for b in boxes)
  for box in boxes:
    assert len(box.names) == box.value.ndim
    assert set(box.names) <= set(layers.LOGICAL_AXES), box.names
    assert box.value.dtype == jnp.float32


def test_untrained_decoder_returns_beta0(tiny, view):
  config, module, variables = tiny
  content = jax.random.normal(jax.random.key(2), (B, T, config.dim))
  emotion = jax.random.normal(jax.random.key(3), (B, config.dim))
  open_eyes = np.zeros_like(view["eye"])
  open_eyes[..., 2:] = 0.3  # gaze moves; the zero-initialised paths must still give β0
  coeffs = module.apply(variables, content, emotion, view["beta0"], open_eyes, view["mask"],
                        method="decode_expression")
  np.testing.assert_allclose(coeffs, np.broadcast_to(view["beta0"][:, None], coeffs.shape), atol=1e-6)


def test_blink_channels_follow_the_eye_signal(tiny, view):
  config, module, variables = tiny
  random_params = _perturbed(variables)
  blink = a2enet.blink_channels(config)
  assert [ICT_CHANNELS[i] for i in blink] == ["eyeBlink_L", "eyeBlink_R"]
  content = jax.random.normal(jax.random.key(2), (B, T, config.dim))
  emotion = jax.random.normal(jax.random.key(3), (B, config.dim))
  decode_fn = _jit(module, "decode_expression")
  decode = lambda eye: np.asarray(  # noqa: E731
    decode_fn(random_params, content, emotion, view["beta0"], eye, view["mask"]))
  closed_value = np.asarray(random_params["params"]["expression_decoder"]["blink_closed"])
  eye = np.zeros((B, T, 4), np.float32)
  eye[:, 3:6, 0] = 1.0  # left eye closed at frames 3..5
  eye[:, 4, 1] = 1.0  # right eye closed at frame 4
  coeffs = decode(eye)
  np.testing.assert_allclose(coeffs[:, 3:6, blink[0]], closed_value[0], atol=1e-5)
  np.testing.assert_allclose(coeffs[:, 4, blink[1]], closed_value[1], atol=1e-5)
  # Where the control says open, the network decides: not pinned to the closed value.
  assert np.abs(coeffs[:, [3, 5], blink[1]] - closed_value[1]).min() > 1e-3
  assert np.abs(decode(eye * 0)[:, 3:6, blink[0]] - closed_value[0]).min() > 1e-3


def test_no_blink_gate_for_bfm_layout():
  config = a2enet.model_config("tiny")
  config.update(channel_layout="bfm", num_coeffs=64)
  assert a2enet.blink_channels(config) == ()
  variables = jax.eval_shape(a2enet.A2ENet(config).init, jax.random.key(0), a2enet.example_view(config))
  assert "blink_closed" not in variables["params"]["expression_decoder"]


def test_emotion_embedding_blends_and_scales(tiny):
  config, module, variables = tiny
  random_params = _perturbed(variables)
  embed = lambda label, intensity: np.asarray(module.apply(  # noqa: E731
    random_params, jnp.asarray(label), jnp.asarray(intensity, jnp.float32), method="emotion_embedding"))
  happy, sad = embed([5], [3.0]), embed([6], [3.0])
  weights = np.zeros((1, config.num_emotions), np.float32)
  weights[0, 5], weights[0, 6] = 0.3, 0.7
  np.testing.assert_allclose(embed(weights, [3.0]), 0.3 * happy + 0.7 * sad, atol=1e-5)
  neutral = embed([0], [0.0])
  np.testing.assert_allclose(embed([5], [0.0]), neutral, atol=1e-6)
  distances = [np.linalg.norm(embed([5], [s]) - neutral) for s in (1.0, 2.0, 3.0)]
  assert distances[0] < distances[1] < distances[2]


def test_emotion_schedule(tiny, view):
  """A constant per-frame emotion equals the pooled one; a schedule is a different, valid input."""
  config, module, variables = tiny
  random_params = _perturbed(variables)
  content = module.apply(random_params, view["mel"], view["mask"], method="encode_content")
  happy = module.apply(random_params, jnp.full((B,), 5), jnp.full((B,), 3.0), method="emotion_embedding")
  sad = module.apply(random_params, jnp.full((B,), 6), jnp.full((B,), 3.0), method="emotion_embedding")
  decode_fn = _jit(module, "decode_expression")
  decode = lambda emotion: np.asarray(decode_fn(  # noqa: E731
    random_params, content, emotion, view["beta0"], view["eye"], view["mask"]))
  pooled = decode(happy)
  np.testing.assert_allclose(decode(jnp.broadcast_to(happy[:, None], (B, T, config.dim))), pooled, atol=1e-5)
  schedule = jnp.where((jnp.arange(T) < T // 2)[None, :, None], happy[:, None], sad[:, None])
  mixed = decode(schedule)
  assert np.isfinite(mixed).all()
  assert np.abs(mixed - pooled).mean() > 1e-3 and np.abs(mixed - decode(sad)).mean() > 1e-3
  with pytest.raises(ValueError, match="frames"):
    decode(schedule[:, :-1])


def test_padding_does_not_leak(tiny, view):
  """Outputs at valid frames do not depend on what the padded frames hold."""
  config, module, variables = tiny
  random_params = _perturbed(variables)
  valid = np.asarray(view["mask"][1]) > 0
  noisy = dict(view)
  noisy["mel"] = np.array(view["mel"])
  noisy["mel"][1, ~valid] = 100.0
  noisy["eye"] = np.array(view["eye"])
  noisy["eye"][1, ~valid] = 1.0
  apply = jax.jit(module.apply)
  a, b = apply(random_params, view), apply(random_params, noisy)
  for key in ("content", "emotion", "audio", "coeffs"):
    np.testing.assert_allclose(a[key][1, valid], b[key][1, valid], atol=1e-4, err_msg=key)
  np.testing.assert_allclose(a["emotion_pooled"], b["emotion_pooled"], atol=1e-4)


def test_ablation_ignores_emotion(view):
  config = a2enet.model_config("tiny")
  config.use_emotion = False
  module = a2enet.A2ENet(config)
  random_params = _perturbed(jax.eval_shape(module.init, jax.random.key(0), a2enet.example_view(config)))
  content = jax.random.normal(jax.random.key(2), (B, T, config.dim))
  outs = [module.apply(random_params, content, jax.random.normal(jax.random.key(s), (B, config.dim)),
                       view["beta0"], view["eye"], view["mask"], method="decode_expression") for s in (3, 4)]
  np.testing.assert_array_equal(outs[0], outs[1])


def test_bfloat16_compute(tiny, view):
  config, _, variables = tiny
  config16 = a2enet.model_config("tiny")
  config16.dtype = "bfloat16"
  module16 = a2enet.A2ENet(config16)
  variables16 = jax.eval_shape(module16.init, jax.random.key(0), a2enet.example_view(config16))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nn.unbox(variables16)))
  random_params = _perturbed(variables)
  out32 = jax.jit(a2enet.A2ENet(config).apply)(random_params, view)
  out16 = jax.jit(module16.apply)(random_params, view)
  assert out16["coeffs"].dtype == jnp.float32
  assert all(bool(jnp.isfinite(v).all()) for v in jax.tree.leaves(out16))
  # Same parameters, lower precision: close to the float32 result relative to its scale.
  scale = float(jnp.abs(out32["coeffs"] - view["beta0"][:, None]).mean())
  assert float(jnp.abs(out16["coeffs"] - out32["coeffs"]).mean()) < 0.1 * scale
  with pytest.raises(ValueError, match="float32"):
    layers.dtype_of("float16")


@pytest.mark.slow
def test_remat_recomputes_blocks_without_changing_parameters_or_gradients(tiny, view):
  """--config.model.remat: the same parameter tree, the same outputs and gradients (it only trades memory
  for a second forward pass of each Transformer block)."""
  config, module, variables = tiny
  remat_config = config.copy_and_resolve_references()
  remat_config.remat = True
  remat_module = a2enet.A2ENet(remat_config)
  assert jax.tree.structure(_init(remat_module, remat_config)) == jax.tree.structure(variables)
  params = _perturbed(variables)

  def loss(module, p):
    return jnp.sum(module.apply(p, view, train=True, rngs={"dropout": jax.random.key(3)})["coeffs"] ** 2)

  plain, remat = (jax.jit(jax.value_and_grad(functools.partial(loss, m))) for m in (module, remat_module))
  (value, grads), (value_remat, grads_remat) = plain(params), remat(params)
  np.testing.assert_allclose(value_remat, value, rtol=1e-5)
  for g, h in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_remat)):
    np.testing.assert_allclose(h, g, rtol=1e-4, atol=1e-6)
