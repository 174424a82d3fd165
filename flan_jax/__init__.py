"""flan_jax: FLAN instruction tuning in JAX."""

import os as _os

# TensorFlow (used only for data pipelines) is chatty at import; keep its C++ logs to errors.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
