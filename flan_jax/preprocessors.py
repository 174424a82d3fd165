"""Shim for one release: `flan_jax.preprocessors` moved to :mod:`flan_jax.data.preprocessors`."""

from flan_jax.data.preprocessors import *  # noqa: F401,F403 - re-exported shim.

