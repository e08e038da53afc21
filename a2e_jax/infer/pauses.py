"""Lips that rest in pauses: an audio-activity gate around the network.

The demo network has heard only synthetic voices, whose pauses are digital silence; in a real recording a
pause holds breath, room noise and reverberation, which the network reads as quiet speech and keeps the
lips parted (about 4.5 mm on the shared real clip). The gate finds the pauses from the audio alone and
puts the mouth at rest there, in two steps:

  1. silent stretches: frames (640 samples, 25 fps) whose RMS is below `threshold` x the clip's loudest
     frame, in runs of at least `min_frames` (3 frames, 120 ms; a shorter dip is a stop consonant);
  2. input: the samples of those frames are zeroed before the log-mel front end, so the network hears the
     silence it was trained on (`gate_audio`);
  3. output: the channels that part the lips (OPENING_CHANNELS: jaw drop, lip raise and lower, funnel,
     mouthClose) move to the reference's resting values β0, with weight `rest_weight`: rising inside the
     stretch over its first `edge_frames` frames (1/3, 2/3, then 1) and falling over its last ones, so the
     mouth is at rest from the third frame of a pause on and speech frames are never touched. Smiles,
     frowns, brows, eyes and cheeks keep the network's output: the emotion does not pause with the voice.

Steps 2 and 3 are a rule, not a learned behaviour: the network is unchanged. `threshold=0` turns the
gate off. The silence definition is the one the model card measures pauses with (RMS < 0.1 x clip max,
>= 3 frames). Ramps outside the stretch (closing the lips on the speech frames around a pause) were
tried first: the real clip's pauses were at rest just the same, but lip error against the corpus truth
rose by 10-25 % (the truth opens the lips ahead of speech, and emotions such as surprise hold the jaw
open through pauses), so the gate stays inside the silence.
"""

import numpy as np

from a2e_jax.core import schema

DEFAULT_THRESHOLD = 0.1
MIN_FRAMES = 3
EDGE_FRAMES = 2


def frame_rms(wav: np.ndarray, num_frames: int | None = None) -> np.ndarray:
  """[T] RMS of each 25 fps frame's 640 samples (the tail after the last whole frame is ignored)."""
  n = wav.size // schema.SAMPLES_PER_FRAME if num_frames is None else num_frames
  frames = np.asarray(wav[:n * schema.SAMPLES_PER_FRAME], np.float64).reshape(n, schema.SAMPLES_PER_FRAME)
  return np.sqrt((frames**2).mean(axis=1))


def silent_stretches(rms_t: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                     min_frames: int = MIN_FRAMES) -> np.ndarray:
  """[T] bool: frames in runs of at least `min_frames` whose RMS is below `threshold` x the loudest's."""
  rms_t = np.asarray(rms_t, np.float64)
  if threshold <= 0 or rms_t.size == 0 or rms_t.max() <= 0:
    return np.zeros(rms_t.shape, bool)
  quiet = np.concatenate([[False], rms_t < threshold * rms_t.max(), [False]])
  edges = np.flatnonzero(quiet[1:] != quiet[:-1])
  out = np.zeros(rms_t.shape, bool)
  for start, end in zip(edges[0::2], edges[1::2]):
    if end - start >= min_frames:
      out[start:end] = True
  return out


def rest_weight(silent_t: np.ndarray, edge_frames: int = EDGE_FRAMES) -> np.ndarray:
  """[T] float32 in [0,1]: 0 outside silent stretches; inside, k / (edge_frames + 1) on the k-th frame
  from the stretch's nearer end (k = 1, 2, ...), at most 1."""
  silent_t = np.asarray(silent_t, bool)
  if not silent_t.any():
    return np.zeros(silent_t.shape, np.float32)
  import scipy.ndimage

  # Distance of each silent frame to the nearest sound frame (the clip's ends count as sound).
  inside = scipy.ndimage.distance_transform_edt(np.pad(silent_t, 1))[1:-1]
  return np.where(silent_t, np.minimum(inside / (edge_frames + 1), 1.0), 0.0).astype(np.float32)


def gate_audio(wav: np.ndarray, silent_t: np.ndarray, first_frame: int = 0) -> np.ndarray:
  """A copy of `wav` (whole frames, starting at frame `first_frame` of the clip) with silent frames zeroed."""
  out = np.array(wav, np.float32, copy=True)
  n = out.size // schema.SAMPLES_PER_FRAME
  mask = np.asarray(silent_t[first_frame:first_frame + n], bool)
  out[:mask.size * schema.SAMPLES_PER_FRAME].reshape(-1, schema.SAMPLES_PER_FRAME)[mask] = 0.0
  return out


# The channels that part the lips (ARKit names): the jaw's drop, the lips' own opening and rounding, and
# mouthClose, which in ARKit's meaning cancels jawOpen's gap. Smiles, frowns, presses and stretches are
# left to the network: they carry the emotion, which does not pause with the voice.
OPENING_CHANNELS = ("jawOpen", "mouthClose", "mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L",
                    "mouthUpperUp_R", "mouthFunnel")


def opening_channels(channel_names) -> np.ndarray:
  """[K] bool: the channels the gate moves to the reference's rest (OPENING_CHANNELS)."""
  return np.isin(np.asarray(channel_names), OPENING_CHANNELS)
