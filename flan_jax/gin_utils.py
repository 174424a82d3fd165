"""Shim for one release: `flan_jax.gin_utils` moved to :mod:`flan_jax.config.gin_utils`."""

from flan_jax.config.gin_utils import *  # noqa: F401,F403 - re-exported shim.

