"""A2ENet large on a TPU pod slice (e.g. v4-32: 16 chips on 4 hosts): batch over data x fsdp, parameters
and optimizer state sharded over fsdp, bfloat16 compute.

  TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh configs/tpu_pod.py /mnt/runs/pod

The mesh takes every chip of the slice: fsdp=4 and data the rest (data=4 on 16 chips); for other slices
keep fsdp a divisor of the chip count (--config.mesh.fsdp=8). Data: the large built-in corpus, built
once under config.data.data_dir on every host (`a2e data build --synthetic large`).
"""

from a2e_jax.tasks.defaults import base_config


def get_config(arg=None):
  del arg  # one variant
  config = base_config("large")
  config.platform = "tpu"
  config.model.dtype = "bfloat16"
  config.data.dataset = "a2e_synthetic/large"
  config.data.workers = 16
  config.mesh.update(data=-1, fsdp=4, model=1)
  config.train.update(steps=200_000, batch_size=1024, log_every=100)
  config.optim.update(learning_rate=2e-3, warmup_steps=4000)
  config.eval.update(every=5000, batches=16, metrics_clips=0)  # the host-side clip metrics: `a2e eval`
  config.checkpoint.update(every=2500, keep=3)
  config.summary.progress_bar = False  # batch logs read better than a bar in a pod's ssh stream
  return config.lock()
