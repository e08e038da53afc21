"""Generation: speech -> expression coefficients with emotion, eye, identity and pose controls.

  generate.py   `generate()` and `Generator` (the chunked two-pass core)    docs/generate.md
  network.py    the network's parts jitted for groups of chunks of one shape
  sources.py    audio (a file, an array, a dataset's windows) -> chunks of mel windows
  request.py    one call's controls resolved: emotion keys, β0, eye and pose tracks
  controls.py   emotion keys, schedules and blends; blink, gaze and pose tracks
  confidence.py `auto` emotion: calibrated, smoothed reading, neutral when unsure
  pauses.py     the pause gate: lips at rest where the audio is silent
  reference.py  identity (β0), pose and eyes from reference coefficient files
  streaming.py  the chunk plan, mel windows from streamed audio, overlap-add
  weights.py    the bundled demo weights and training checkpoints
  outputs.py    export formats and video for a generation
  batch.py      folders and manifests
  (the commands `a2e generate` and `a2e demo` are cli/generate.py)
"""
