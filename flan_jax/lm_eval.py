"""Shim for one release: `flan_jax.lm_eval` moved to :mod:`flan_jax.evaluation.lm_eval`."""

from flan_jax.evaluation.lm_eval import *  # noqa: F401,F403 - re-exported shim.

