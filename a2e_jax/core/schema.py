"""The data contract shared by the corpus, the TFDS builders, the input pipeline, the model and inference.

Time bases: audio at 16 kHz; video/coefficients at 25 fps; log-mel at 80 frames/s (hop 200, librosa's
centred STFT: 1 + samples // 200 frames). Video frame t sees the 16 mel frames (0.2 s) starting at
int(80 * (t - 2) / 25), indices clamped to the clip, exactly as SadTalker windows its audio.

A **clip** (one record of a dataset; variable length T frames) holds:
  clip_id      str      unique id, e.g. "spk03/s0123/happy_2"
  speaker      str      speaker id
  sentence     str      sentence id (clips of one speaker and sentence are cross-reconstruction partners)
  emotion      int64    index into EMOTIONS (real data without a label: NEUTRAL)
  intensity    int64    1..3 (MEAD levels); 0 when unknown
  split        str      one of SPLITS
  mel          [M,80]   float32 log-mel (SadTalker normalisation, [-4,4]); M = 1 + T * 640 // 200
  coeffs       [T,K]    float32 expression coefficients (K = 53 ICT/ARKit channels for the built-in corpus,
                        64 for BFM data); the model predicts these
  beta0        [K]      float32 the speaker's resting expression (identity signal the model must keep)
  eye          [T,EYE]  float32 eye control: blink closure in [0,1] left/right, gaze yaw/pitch in radians
  pose         [T,6]    float32 head pose: angles (radians, R = Rz·Ry·Rx) + translation
  phones       [P]      int32 phoneme ids (built-in corpus only; else empty) for alignment scoring
  phone_start  [P]      float32 phoneme start times in seconds

On disk, a corpus (the built-in one, or real data prepared by tools/prepare_mead.py) is a folder with
`manifest.jsonl`, one JSON object per clip:
  {"clip_id", "audio": path, "coeffs": path, "fps": float, "speaker", "sentence", "emotion": name or "",
   "intensity": int (0 unknown), "split"}
Paths are relative to the manifest's folder. `coeffs` is any format `a2e_jax.face` can import; the built-in
corpus writes our `.npz` (formats/sequence.py: coeffs, channel_names, fps, model, pose, eye, beta0, and the
extras phones, phone_start).

A training **batch** is a dict of four time-aligned clip views for cross-reconstruction, each a dict of
  mel [B,T,16,80], coeffs [B,T,K], beta0 [B,K], eye [B,T,EYE], emotion [B], intensity [B], mask [B,T]
  (1 on real frames; 0 past a clip's end, and on "ab"/"ba" when a clip has no partner and the fallback
  masks them), clip [B] (index of the clip in its split; data/pipeline.py):
  "a"  = x(i,m)  content i, emotion m        "b"  = x(j,n)  content j, emotion n
  "ab" = x(i,n)  content of a, emotion of b  "ba" = x(j,m)  content of b, emotion of a
where "ab" is DTW-warped onto a's timeline and "ba" onto b's, so frame t of "a" and "ab" say the same phone.
"""

import numpy as np

SAMPLE_RATE = 16_000
FPS = 25
HOP = 200
MEL_BANDS = 80
MEL_FPS = SAMPLE_RATE // HOP  # 80 mel frames per second
MEL_WINDOW = 16  # mel frames per video frame window (0.2 s)

EMOTIONS = ("neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
NEUTRAL = 0
INTENSITIES = (1, 2, 3)
SPLITS = ("train", "val_speaker", "val_sentence", "test")
# Presets of the built-in corpus (data/synth/corpus.py PRESETS), smallest first.
SYNTHETIC_PRESETS = ("tiny", "default", "wide", "large")

EYE_CHANNELS = ("blink_left", "blink_right", "gaze_yaw", "gaze_pitch")
EYE = len(EYE_CHANNELS)
POSE = 6


SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640


def mel_window_indices(num_frames: int, num_mel: int):
  """[T,16] int32 mel-frame indices of each video frame's window (SadTalker: start at frame t-2)."""
  starts = np.array([int(MEL_FPS * (t - 2) / FPS) for t in range(num_frames)], np.int64)
  return np.clip(starts[:, None] + np.arange(MEL_WINDOW), 0, num_mel - 1).astype(np.int32)


def num_mel_frames(num_frames: int) -> int:
  """Mel frames of audio cut or padded to exactly `num_frames` video frames."""
  return 1 + num_frames * SAMPLES_PER_FRAME // HOP


def emotion_index(name: str) -> int:
  """Index of an emotion name (case-insensitive; MEAD spellings), or ValueError listing the choices."""
  key = name.strip().lower()
  aliases = {"disgust": "disgusted", "surprise": "surprised", "fearful": "fear", "anger": "angry",
             "happiness": "happy", "sadness": "sad", "calm": "neutral"}
  key = aliases.get(key, key)
  if key not in EMOTIONS:
    raise ValueError(f"unknown emotion {name!r}; choose one of {', '.join(EMOTIONS)}")
  return EMOTIONS.index(key)
