"""Flax Linen modules: layers, content and emotion encoders, audio and expression decoders, A2ENet."""
