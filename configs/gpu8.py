"""A2ENet base on one node with 8 GPUs: data parallel over the 8 devices, bfloat16 compute.

  sbatch launch/slurm_gpu.sbatch configs/gpu8.py runs/gpu8            # SLURM
  launch/local.sh configs/gpu8.py runs/gpu8                           # a machine with 8 GPUs
  launch/local.sh configs/gpu8.py:mead runs/gpu8_mead                 # MEAD instead (see configs/mead.py)

Variants: synthetic (default; the large built-in corpus: `a2e data build --synthetic large` first), mead.
Several nodes: `sbatch --nodes=N ...` keeps mesh.data=-1, so the data axis spans every GPU; scale
train.batch_size with it.
"""

from a2e_jax.tasks.defaults import base_config

VARIANTS = ("synthetic", "mead")


def get_config(arg=None):
  variant = arg or "synthetic"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
  config = base_config("base")
  config.platform = "gpu"
  config.model.dtype = "bfloat16"
  config.data.dataset = "a2e_synthetic/large"
  config.data.workers = 4  # grain worker processes per training process
  if variant == "mead":
    config.data.dataset = "a2e_manifest/mead"
    config.model.update(channel_layout="bfm", num_coeffs=64)
    config.face_model = "bfm"
  config.mesh.update(data=-1, fsdp=1, model=1)
  config.train.update(steps=100_000, batch_size=256, log_every=100)
  config.optim.update(learning_rate=2e-3, warmup_steps=2000)
  config.eval.update(every=2500, batches=16, metrics_clips=256)
  config.checkpoint.update(every=2500, keep=3)
  return config.lock()
