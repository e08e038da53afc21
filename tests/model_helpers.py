"""Small synthetic inputs for the model, loss and evaluation tests: a random face model and batches whose
targets are a known function of the inputs (so a model can learn them and cross-reconstruction is exact)."""

import jax
import jax.numpy as jnp
import numpy as np

from a2e_jax.core import schema
from a2e_jax.face.model import MorphableModel
from a2e_jax.models import a2enet

VIEWS = ("a", "b", "ab", "ba")


def random_face_model(num_coeffs: int = 53, num_vertices: int = 300, seed: int = 0) -> MorphableModel:
  """A random linear face model with lips, upper-face regions and 68 landmarks."""
  rng = np.random.default_rng(seed)
  return MorphableModel(
    mean=jnp.asarray(rng.normal(size=(num_vertices, 3)), jnp.float32),
    id_basis=jnp.asarray(rng.normal(size=(num_vertices, 3, 4)) * 0.1, jnp.float32),
    exp_basis=jnp.asarray(rng.normal(size=(num_vertices, 3, num_coeffs)) * 0.05, jnp.float32),
    triangles=jnp.asarray([[0, 1, 2]], jnp.int32),
    landmarks=jnp.asarray(rng.choice(num_vertices, 68, replace=False), jnp.int32),
    regions={"lips": jnp.arange(0, 40, dtype=jnp.int32), "upper_face": jnp.arange(100, 200, dtype=jnp.int32)},
    name="random",
  )


def synthetic_batch(config, batch: int = 2, frames: int = 16, seed: int = 0, padded: bool = True) -> dict:
  """The four views of core/schema.py built from two sentences (i, j) and two emotions (m, n) per row.

  mel(i,m) = sentence_i + emotion_m; coeffs(i,m) = β0 + mouth(i) + face(m), with the blink channels equal
  to the eye control; "ab" shares a's sentence and b's emotion, "ba" the reverse; the second row is padded.
  """
  rng = np.random.default_rng(seed)
  k = config.num_coeffs
  sentence = rng.normal(size=(2, batch, frames, schema.MEL_WINDOW, config.mel_bands)).astype(np.float32)
  emotion_mel = rng.normal(size=(schema.EMOTIONS.__len__(), config.mel_bands)).astype(np.float32)
  mouth_proj = rng.normal(size=(config.mel_bands, k)).astype(np.float32) * 0.05
  face = rng.uniform(0, 0.5, size=(len(schema.EMOTIONS), k)).astype(np.float32)
  labels = np.stack([rng.choice(len(schema.EMOTIONS), 2, replace=False) for _ in range(batch)], 1)  # [2,B]
  beta0 = rng.uniform(0, 0.2, size=(batch, k)).astype(np.float32)
  mask = np.ones((batch, frames), np.float32)
  if padded and batch > 1:
    mask[1, frames * 3 // 4:] = 0.0
  blink = a2enet.blink_channels(config)

  def view(s, e):
    mel = sentence[s] + emotion_mel[labels[e]][:, None, None, :]
    coeffs = beta0[:, None] + np.tanh(sentence[s].mean(2) @ mouth_proj) + face[labels[e]][:, None]
    eye = np.zeros((batch, frames, schema.EYE), np.float32)
    eye[:, frames // 3: frames // 3 + 3, :2] = 1.0
    if blink:
      coeffs[..., list(blink)] = eye[..., :2]
    return dict(mel=mel, coeffs=coeffs.astype(np.float32), beta0=beta0, eye=eye,
                emotion=labels[e].astype(np.int32), intensity=np.full(batch, 2, np.int32), mask=mask)

  return {"a": view(0, 0), "b": view(1, 1), "ab": view(0, 1), "ba": view(1, 0)}


def init_params(config, seed: int = 0):
  """Boxed variables of a freshly initialised A2ENet(config)."""
  return a2enet.A2ENet(config).init(jax.random.key(seed), a2enet.example_view(config))
