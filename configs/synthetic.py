"""A2ENet on the built-in synthetic emotional speech corpus (the embedded default data set).

  a2e train --config configs/synthetic.py --workdir runs/synthetic
  a2e train --config configs/synthetic.py:tiny --workdir /tmp/a2e_tiny      # seconds; what the tests run

Variants:
  default  the base model (~12 M parameters) on the default corpus, sized for one GPU or a long CPU run
  cpu      the tiny model on the default corpus: a useful model on this 2-core CPU in about an hour
  tiny     a handful of steps of the tiny model on the tiny corpus: tests and smoke runs
Override anything with --config.a.b=value, e.g. --config.train.steps=2000 --config.mesh.fsdp=2.
"""

from a2e_jax.train.defaults import base_config

VARIANTS = ("default", "cpu", "tiny")


def get_config(arg=None):
  variant = arg or "default"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
  config = base_config("tiny" if variant in ("cpu", "tiny") else "base")
  config.data.dataset = "a2e_synthetic/tiny" if variant == "tiny" else "a2e_synthetic/default"
  if variant == "cpu":
    config.train.update(steps=6000, batch_size=16, log_every=25)
    config.optim.update(learning_rate=1e-3, warmup_steps=300)
    config.eval.update(every=500, batches=4)
    config.checkpoint.every = 500
  if variant == "tiny":
    config.data.window_frames = 16
    config.train.update(steps=6, batch_size=8, log_every=2)
    config.optim.warmup_steps = 2
    config.eval.update(every=3, batches=1, metrics_clips=0)
    config.checkpoint.update(every=3, keep=2)
    config.summary.update(plots=False, progress_bar=False)
  return config.lock()
