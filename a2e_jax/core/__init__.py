"""The foundation every other package stands on: the data contract, channel layouts, errors, paths, config
files and the read side of a training run's folder. It imports nothing else of a2e_jax.

  schema.py    time bases, emotions, splits, the clip and batch contract
  channels.py  the named expression-channel layouts (ICT/ARKit 53, BFM 64) and ARKit's 52
  errors.py    `UserError`: a mistake in the user's input, reported in one line
  paths.py     the per-user cache folder
  outputs.py   output files that are whole or absent (a checked path, a temporary name, a rename)
  config.py    `ml_collections` config files with `--config.x=y` overrides
  run_dir.py   a training run's folder: its config.json and the parameters of a checkpoint
"""
