"""Shim for one release: `flan_jax.templates` moved to :mod:`flan_jax.data.templates`."""

from flan_jax.data.templates import *  # noqa: F401,F403 - re-exported shim.

