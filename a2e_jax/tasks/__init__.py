"""What the trainer trains: A2ENet's task wiring (model, losses, batches, eval hooks) and its default config.

  a2enet.py          `a2enet_task(config)`: the `train.task.Task` of A2ENet on the built dataset
  losses.py          the cross-reconstruction losses
  defaults.py        `base_config`: the sections every training config has
  random_batches.py  random batches of the training batch's shapes (benchmarks, smoke runs)
"""
