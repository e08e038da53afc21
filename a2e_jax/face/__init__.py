"""Face models: `MorphableModel`, the BFM and ICT-FaceKit importers, the built-in procedural head
(`face.builtin`), landmark regions, retargeting between models, and the model registry."""
