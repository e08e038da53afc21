"""The sharded trainer: mesh and rules, train state, step, Orbax checkpoints, losses, the loop."""
