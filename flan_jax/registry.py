"""Shim for one release: `flan_jax.registry` moved to :mod:`flan_jax.data.registry`."""

from flan_jax.data.registry import *  # noqa: F401,F403 - re-exported shim.

