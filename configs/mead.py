"""A2ENet on MEAD (real emotional speech) with Deep3DFaceRecon/BFM expression coefficients (64 channels).

  python tools/prepare_mead.py --root MEAD --coeffs MEAD_coeffs --out corpora/mead/manifest.jsonl \\
      --test-speakers M003,W009 --val-speakers M005 --val-sentences 028,029,030
  a2e data build --manifest corpora/mead/manifest.jsonl --name mead
  a2e models convert --from bfm PATH/BFM_model_front.mat          # once: the face of the vertex losses
  a2e train --config configs/mead.py --workdir runs/mead

Variants: default (base model), tiny (the tiny model for a quick check of a new manifest).
The same manifest route serves CREMA-D, RAVDESS or HDTF (tools/prepare_mead.py --layout): set
--config.data.dataset=a2e_manifest/<name>, and --config.model.channel_layout and num_coeffs to the
coefficients of those files (ict and 53 for ARKit/ICT ones, with --config.face_model=ict).
"""

from a2e_jax.tasks.defaults import base_config

VARIANTS = ("default", "tiny")


def get_config(arg=None):
  variant = arg or "default"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
  config = base_config("tiny" if variant == "tiny" else "base")
  config.data.dataset = "a2e_manifest/mead"
  config.model.update(channel_layout="bfm", num_coeffs=64)
  config.face_model = "bfm"
  # Real speech: level and noise robustness on top of the corpus as recorded.
  config.data.augment.update(gain_db=6.0, mel_noise=0.05)
  config.train.update(steps=60_000, batch_size=32)
  config.optim.update(learning_rate=5e-4, warmup_steps=1000)
  if variant == "tiny":
    config.train.update(steps=200, batch_size=8, log_every=10)
    config.eval.update(every=100, batches=2, metrics_clips=16)
    config.checkpoint.every = 100
  return config.lock()
