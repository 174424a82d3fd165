"""Shim for one release: `flan_jax.mixing` moved to :mod:`flan_jax.data.mixing`."""

from flan_jax.data.mixing import *  # noqa: F401,F403 - re-exported shim.

