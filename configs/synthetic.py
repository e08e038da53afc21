"""A2ENet on the built-in synthetic emotional speech corpus (the embedded default data set).

  a2e train --config configs/synthetic.py --workdir runs/synthetic          # 1-3 h on a 2-core CPU
  a2e train --config configs/synthetic.py:base --workdir runs/synthetic_base  # the base model (a GPU)
  a2e train --config configs/synthetic.py:tiny --workdir /tmp/a2e_tiny      # a few steps: tests, smoke runs

Variants:
  default  the tiny model (~1.3 M parameters) on the default corpus: a useful model on a CPU
  base     the base model (~12 M parameters) on the default corpus, for one GPU
  tiny     six steps of the tiny model on the tiny corpus
The dataset is built on first use (docs/training.md). Override anything with --config.a.b=value, e.g.
--config.train.steps=2000 --config.mesh.fsdp=2.
"""

from a2e_jax.tasks.defaults import base_config

VARIANTS = ("default", "base", "tiny")


def get_config(arg=None):
  variant = arg or "default"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
  config = base_config("base" if variant == "base" else "tiny")
  config.data.dataset = "a2e_synthetic/tiny" if variant == "tiny" else "a2e_synthetic/default"
  if variant == "default":
    config.train.update(steps=6000, batch_size=16, log_every=25)
    config.optim.update(learning_rate=1e-3, warmup_steps=300)
    config.eval.update(every=500, batches=4, metrics_clips=32)
    config.checkpoint.every = 500
  if variant == "base":
    config.train.update(steps=20_000, batch_size=32)
    config.optim.update(learning_rate=1e-3, warmup_steps=1000)
  if variant == "tiny":
    config.data.window_frames = 16
    config.train.update(steps=6, batch_size=8, log_every=2)
    config.optim.warmup_steps = 2
    config.eval.update(every=3, batches=1, metrics_clips=0)
    config.checkpoint.update(every=3, keep=2)
    config.summary.update(plots=False, faces=False, progress_bar=False)
  return config.lock()
