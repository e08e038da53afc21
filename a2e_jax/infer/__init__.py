"""Generation: speech -> expression coefficients with emotion, eye, identity and pose controls.

  generate.py   `generate()` and `Generator` (the chunked two-pass core)    docs/generate.md
  controls.py   emotion keys, schedules and blends; blink, gaze and pose tracks
  reference.py  identity (β0), pose and eyes from reference coefficient files
  streaming.py  the chunk plan, mel windows from streamed audio, overlap-add
  weights.py    the bundled demo weights and training checkpoints
  outputs.py    export formats and video for a generation
  batch.py      folders and manifests
  cli.py        `a2e generate`, `a2e demo`
"""
