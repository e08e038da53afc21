"""`--emotion auto`'s second question: does this voice sound like the voices the network trained on?

A calibrated probability (confidence.py) says how sure the emotion head is, not whether the head knows the
voice: on a synthesiser or a person it never heard it can be sure and wrong (the demo weights read the
shared real clip as angry at 0.8). So `auto` also measures how far the speech's emotion latent lies from
those of the training voices, and follows the reading only where the voice is familiar:

  * statistics: a Gaussian per emotion with one covariance shared by all eight (the generative model whose
    Bayes classifier is linear, as the emotion head is), fitted on the clip latents (the pooled emotion
    latent averaged over a clip, which is what auto's ±5 s smoothing sees) of TRAINING groups of the
    training engines. The covariance is the within-emotion scatter shrunk by Ledoit-Wolf (D = 128 latent
    dimensions from a few hundred clips would otherwise be singular).
  * distance: the Mahalanobis distance to the nearest emotion's mean (Lee et al. 2018, "A simple unified
    framework for detecting out-of-distribution samples"). Chosen over k-nearest-neighbour distances
    because it needs only E means and one D x D matrix with the weights, not the training latents, and it
    ignores directions in which the training voices themselves vary.
  * the limit: the `quantile` (0.99) of the distances of HELD-OUT groups of the same training engines;
    nothing from an engine the network never heard chooses it.
  * gate: trust 1 up to the limit x (1 - SOFT), 0 from the limit x (1 + SOFT), linear between; `auto`
    follows the speech's reading with min(confidence trust, this trust), so an unfamiliar voice reads
    neutral unless the reading is both confident and in distribution.

The statistics live beside the weights (`STATS_FILE`), the limit in their card
(`emotion_calibration.ood`); `tools/eval_voices.py --calibrate ENGINES` fits both. Weights without them
have no gate; `--emotion-distance inf` turns it off.
"""

import dataclasses
import os

import numpy as np

STATS_FILE = "emotion_ood.npz"
DEFAULT_QUANTILE = 0.99
SOFT = 0.05  # relative half-width of the ramp around the limit, so a hovering distance does not flicker


@dataclasses.dataclass(frozen=True)
class LatentStats:
  """Per-emotion means [E,D] and the shared precision [D,D] of training clip latents."""

  means_ed: np.ndarray
  precision_dd: np.ndarray

  def distance(self, latents_nd: np.ndarray) -> np.ndarray:
    """[n] Mahalanobis distance of each row of `latents_nd` [n,D] to the nearest emotion's mean."""
    diff = np.asarray(latents_nd, np.float64)[:, None, :] - self.means_ed[None]  # [n,E,D]
    squared = np.einsum("ned,df,nef->ne", diff, self.precision_dd, diff)
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))


def fit_stats(latents_nd: np.ndarray, labels_n: np.ndarray, num_emotions: int = 8) -> LatentStats:
  """Per-emotion means and the Ledoit-Wolf-shrunk shared within-emotion covariance of `latents_nd`."""
  from sklearn.covariance import LedoitWolf

  latents_nd, labels_n = np.asarray(latents_nd, np.float64), np.asarray(labels_n)
  missing = sorted(set(range(num_emotions)) - set(labels_n.tolist()))
  if missing:
    raise ValueError(f"fit_stats needs clips of every emotion; none of {missing}")
  means = np.stack([latents_nd[labels_n == k].mean(axis=0) for k in range(num_emotions)])
  residuals = latents_nd - means[labels_n]
  precision = LedoitWolf(assume_centered=True).fit(residuals).precision_
  return LatentStats(means.astype(np.float32), precision.astype(np.float32))


def fit_limit(stats: LatentStats, held_out_nd: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> float:
  """The `quantile` of the distances of held-out clip latents of the training voices."""
  return float(np.quantile(stats.distance(held_out_nd), quantile))


def trust(distance_n: np.ndarray, limit: float) -> np.ndarray:
  """[n] in [0,1]: 1 well inside `limit`, 0 beyond it, linear within ±SOFT x limit (inf: always 1)."""
  distance_n = np.asarray(distance_n, np.float64)
  if not np.isfinite(limit):
    return np.ones(distance_n.shape)
  return np.clip((limit * (1 + SOFT) - distance_n) / (2 * SOFT * limit), 0.0, 1.0)


def save_stats(folder: str, stats: LatentStats) -> str:
  path = os.path.join(folder, STATS_FILE)
  np.savez(path, means_ed=stats.means_ed, precision_dd=stats.precision_dd)
  return path


def load_gate(folder: str | None, card: dict) -> tuple:
  """(LatentStats, limit) of weights in `folder` with this card, or (None, inf) when they have none."""
  ood = card.get("emotion_calibration", {}).get("ood")
  path = os.path.join(folder or "", STATS_FILE)
  if not ood or not os.path.isfile(path):
    return None, float("inf")
  with np.load(path) as f:
    return LatentStats(f["means_ed"], f["precision_dd"]), float(ood["distance"])
