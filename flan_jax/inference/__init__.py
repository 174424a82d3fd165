"""Inference: scoring, decoding and the interactive model (`flan_jax.load`)."""
