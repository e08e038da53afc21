"""The sections every training config has, with their defaults; configs/*.py start from `base_config`.

  task        "module:function" building the Task (train/task.py; A2ENet: tasks/a2enet.py)
  platform    "" (any), "cpu", "gpu" or "tpu": what the config is meant for; another backend warns
  seed        parameters, per-step keys and the input order all follow from it
  input       "dataset" (config.data) or "random" (random batches of the same shapes)
  face_model  face model of the vertex losses: "builtin", "ict", "bfm", a model path, or "" for none
  model       models/a2enet.py model_config
  loss        tasks/losses.py loss_config
  data        data/pipeline.py data_config
  mesh        devices per mesh axis (data, fsdp, model); -1 takes the remaining devices
  optim       train/state.py optim_config
  train       steps, batch_size (global), grad_accum_steps (microbatches per step), log_every
  eval        every (steps; 0 disables), batches (per eval split), seed (of the eval batches),
              metrics_clips (whole clips per split scored by a2e_jax.eval: lip error, FDD, blinks; 0: none)
  checkpoint  every (steps), keep (latest), best_metric/best_mode (also kept), async_save
  profile     start_step (0: off), steps: a jax.profiler trace of those steps into WORKDIR/profile
  summary     tensorboard, plots (coefficient curves at each eval), faces (a filmstrip of rendered predicted
              and true faces at each eval), progress_bar
"""

import ml_collections

from a2e_jax.data import pipeline
from a2e_jax.models import a2enet
from a2e_jax.tasks import losses
from a2e_jax.train.state import optim_config


def base_config(model_size: str = "base") -> ml_collections.ConfigDict:
  """An unlocked config with every section at its default, for a config file to adjust and lock."""
  config = ml_collections.ConfigDict()
  config.task = "a2e_jax.tasks.a2enet:a2enet_task"
  config.platform = ""
  config.seed = 0
  config.input = "dataset"
  config.face_model = "builtin"  # its 53 ICT/ARKit channels are the built-in corpus's and the model's
  config.model = a2enet.model_config(model_size)
  config.loss = losses.loss_config()
  config.data = pipeline.data_config()
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, model=1))
  config.optim = optim_config()
  config.train = ml_collections.ConfigDict(dict(
    steps=20_000, batch_size=32, grad_accum_steps=1, log_every=50))
  config.eval = ml_collections.ConfigDict(dict(every=1000, batches=8, seed=1234, metrics_clips=64))
  config.checkpoint = ml_collections.ConfigDict(dict(
    every=1000, keep=3, best_metric="eval/loss", best_mode="min", async_save=True))
  config.profile = ml_collections.ConfigDict(dict(start_step=0, steps=5))
  config.summary = ml_collections.ConfigDict(dict(
    tensorboard=True, plots=True, faces=True, progress_bar=True))
  return config
