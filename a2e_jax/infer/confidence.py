"""`--emotion auto`: the emotion heard in the speech when the reading is confident, neutral otherwise.

The emotion encoder's classifier reads each chunk's emotion; a network trained on synthetic voices reads
*something* in any voice — on plain radio speech the demo weights' raw reading was happy, angry or
contempt at 0.3–0.8 and never neutral — and a face that grins or scowls at a user who asked for nothing
is the worst default. So the default request trusts the speech only as far as the reading deserves:

  1. calibration: logits / T, with the temperature T fitted on held-out clips (voices the network never
     trained on) by minimising the negative log-likelihood (`fit_temperature`); the weights' model card
     holds T (`emotion_calibration.temperature`) with the expected calibration error before and after;
     optionally plus an offset on the neutral logit (`fit_neutral_offset`, the card's
     `emotion_calibration.neutral_offset`): a prior shift towards neutral, as large as the voices the
     network knows allow, for voices it does not (docs/generate.md: on a held-out engine it is what moved
     neutral renditions to neutral where temperature, threshold and the familiar-voice gate did not);
  2. smoothing: the calibrated probabilities are averaged over the same window as the emotion latent
     (±5 s around each chunk), so one odd chunk neither triggers nor cancels an emotion;
  3. fallback: where the smoothed reading is neutral, or its probability is below `threshold`, the
     chunk's emotion latent is the network's neutral label embedding; above it, the speech's latent.
     Between `threshold - SOFT` and `threshold + SOFT` the two are mixed linearly, so a reading that
     hovers around the threshold does not flicker.

`threshold=0` trusts every reading (the old behaviour, also `--emotion speech`); 1 always falls back.
The weights' card holds the threshold too (`emotion_calibration.threshold`, `fit_threshold`): the most
cautious one that still keeps the emotion of held-out renditions of the voices the network trained on.
"""

import numpy as np

DEFAULT_THRESHOLD = 0.3
SOFT = 0.05
THRESHOLD_GRID = tuple(round(0.2 + 0.05 * k, 2) for k in range(16))  # 0.2 .. 0.95, for fit_threshold
OFFSET_GRID = tuple(0.25 * k for k in range(25))  # 0 .. 6 on the neutral logit, for fit_neutral_offset


def calibrated_probs(logits_ne: np.ndarray, temperature: float = 1.0, neutral_offset: float = 0.0,
                     neutral: int = 0) -> np.ndarray:
  """[n,E] softmax(logits / temperature + neutral_offset on the neutral class) in float64."""
  z = np.asarray(logits_ne, np.float64) / float(temperature)
  if neutral_offset:
    z = z.copy()
    z[..., neutral] += float(neutral_offset)
  z = np.exp(z - z.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def trust(probs_ne: np.ndarray, threshold: float = DEFAULT_THRESHOLD, neutral: int = 0) -> np.ndarray:
  """[n] in [0,1]: how far to follow each row's reading (0 where it is neutral or below `threshold`;
  threshold 0 follows every reading)."""
  probs_ne = np.asarray(probs_ne, np.float64)
  if threshold <= 0:
    return np.ones(probs_ne.shape[:-1])
  weight = np.clip((probs_ne.max(axis=-1) - threshold + SOFT) / (2 * SOFT), 0.0, 1.0)
  return np.where(probs_ne.argmax(axis=-1) == neutral, 0.0, weight)


def card_threshold(card: dict) -> float:
  """The weights' fitted `auto` threshold (their card's emotion_calibration.threshold), else the default."""
  return float(card.get("emotion_calibration", {}).get("threshold", DEFAULT_THRESHOLD))


def fit_threshold(probs_ne: np.ndarray, labels_n: np.ndarray, tolerance: float = 0.03,
                  grid=THRESHOLD_GRID) -> float:
  """The highest threshold of `grid` at which `auto` keeps the emotion of the emotional rows (label not
  neutral; trust >= 0.5 and the reading right) at most `tolerance` less often than following every reading
  does. Rows are clip readings (calibrated probabilities averaged over a clip, as the smoothing does) of
  held-out renditions of voices the network knows: the higher the threshold, the more an unheard voice's
  unsure reading falls back to neutral, and this is as high as it goes before heard emotions are lost."""
  probs_ne, labels_n = np.asarray(probs_ne, np.float64), np.asarray(labels_n)
  emotional = labels_n != 0
  right = probs_ne[emotional].argmax(axis=-1) == labels_n[emotional]
  if not emotional.any():
    raise ValueError("fit_threshold needs emotional renditions")
  best = min(grid)
  for threshold in sorted(grid):
    kept = (trust(probs_ne[emotional], threshold) >= 0.5) & right
    if kept.mean() >= right.mean() - tolerance:
      best = threshold
  return float(best)


def card_neutral_offset(card: dict) -> float:
  """The weights' fitted neutral-logit offset (their card's emotion_calibration.neutral_offset), else 0."""
  return float(card.get("emotion_calibration", {}).get("neutral_offset", 0.0))


def clip_means(probs_ne: np.ndarray, owner_n: np.ndarray) -> np.ndarray:
  """[c,E] the mean of each clip's chunk rows (`owner_n` [n]: the clip of each row, sorted ids)."""
  return np.stack([probs_ne[owner_n == i].mean(axis=0) for i in np.unique(owner_n)])


def fit_neutral_offset(logits_ne: np.ndarray, owner_n: np.ndarray, labels_c: np.ndarray, temperature: float,
                       threshold: float, tolerance: float = 0.05, grid=OFFSET_GRID) -> float:
  """The largest offset of `grid` on the neutral logit at which `auto` (at `threshold`) keeps the emotion
  of the emotional clips (trust >= 0.5 and the clip reading right) at most `tolerance` less often than
  following every reading without the offset does. `logits_ne` are chunk logits of held-out clips of the
  voices the network knows, `owner_n` each chunk's clip, `labels_c` each clip's emotion (clip readings
  average the chunks, as the smoothing does). The default tolerance is issue 14's margin: `auto`'s emotion
  accuracy within 5 points."""
  labels_c = np.asarray(labels_c)
  emotional = labels_c != 0
  if not emotional.any():
    raise ValueError("fit_neutral_offset needs emotional renditions")
  plain = clip_means(calibrated_probs(logits_ne, temperature), owner_n)[emotional]
  floor = np.mean(plain.argmax(axis=-1) == labels_c[emotional]) - tolerance
  best = min(grid)
  for offset in sorted(grid):
    probs = clip_means(calibrated_probs(logits_ne, temperature, offset), owner_n)[emotional]
    kept = (trust(probs, threshold) >= 0.5) & (probs.argmax(axis=-1) == labels_c[emotional])
    if kept.mean() >= floor:
      best = offset
  return float(best)


def expected_calibration_error(probs_ne: np.ndarray, labels_n: np.ndarray, bins: int = 15) -> float:
  """ECE: the mean over equal-width confidence bins of |accuracy - confidence|, weighted by bin size."""
  probs_ne = np.asarray(probs_ne, np.float64)
  confidence, correct = probs_ne.max(axis=-1), probs_ne.argmax(axis=-1) == np.asarray(labels_n)
  which = np.minimum((confidence * bins).astype(int), bins - 1)
  total = 0.0
  for b in range(bins):
    in_bin = which == b
    if in_bin.any():
      total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
  return float(total / max(len(confidence), 1))


def fit_temperature(logits_ne: np.ndarray, labels_n: np.ndarray) -> float:
  """The temperature in [0.05, 100] that minimises the negative log-likelihood of `labels_n`."""
  import scipy.optimize

  logits_ne, labels_n = np.asarray(logits_ne, np.float64), np.asarray(labels_n)

  def nll(log_t):
    p = calibrated_probs(logits_ne, np.exp(log_t))
    return -np.mean(np.log(np.maximum(p[np.arange(len(labels_n)), labels_n], 1e-300)))

  result = scipy.optimize.minimize_scalar(nll, bounds=(np.log(0.05), np.log(100.0)), method="bounded")
  return float(np.exp(result.x))
