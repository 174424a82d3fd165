"""flan_jax: FLAN instruction tuning in JAX."""

import os as _os

# TensorFlow (used only for data pipelines) is chatty at import; keep its C++ logs to errors.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def load(path: str, **kwargs):
  """A flan_jax checkpoint directory or a Hugging Face model directory as a notebook model.

  See :func:`flan_jax.inference.interactive.load`.
  """
  from flan_jax.inference import interactive  # Lazy: keeps `import flan_jax` light.
  return interactive.load(path, **kwargs)
