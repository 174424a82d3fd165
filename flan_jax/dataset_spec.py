"""Shim for one release: `flan_jax.dataset_spec` moved to :mod:`flan_jax.data.spec`."""

from flan_jax.data.spec import *  # noqa: F401,F403 - re-exported shim.

