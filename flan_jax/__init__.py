"""flan_jax: FLAN instruction tuning in JAX."""

__version__ = "0.1.0"
