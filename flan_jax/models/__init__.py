"""Decoder-only Transformer models (flax.linen)."""

from flan_jax.models.config import DecoderConfig
from flan_jax.models.decoder import (
  MODEL_FEATURES,
  Decoder,
  abstract_params,
  init_cache,
  init_params,
)

__all__ = ["MODEL_FEATURES", "Decoder", "DecoderConfig", "abstract_params", "init_cache",
           "init_params"]
