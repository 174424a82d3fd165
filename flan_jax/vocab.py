"""Shim for one release: `flan_jax.vocab` moved to :mod:`flan_jax.data.vocab`."""

from flan_jax.data.vocab import *  # noqa: F401,F403 - re-exported shim.
