"""The built-in face, generated procedurally: `builtin_model()` (head.py) from the neutral surface
(shape.py), its mesh (mesh.py), albedo (colors.py) and 53 expression channels (expressions.py)."""

from a2e_jax.face.builtin.head import builtin_model

__all__ = ["builtin_model"]
