"""Fitting a morphable model to faces in pictures (analysis by synthesis).

  correspondence  surface points (triangle + barycentrics) that 2D landmarks measure
  solve           the fit: landmark reprojection through Deep3DFaceRecon's camera, a photometric term
                  through the JAX rasterizer with SH lighting and the model's albedo, priors, robust
                  losses; one identity per clip, per-frame expression, pose and lighting
  synthetic       ground-truth sequences of any model rendered into photographic-looking images (tests,
                  benchmarks)
  quality         the error measures the tests and benchmarks report
In the layer beside data/ and models/: it imports core, face, formats, render and vision only.
"""
