"""Interoperability: Hugging Face models and tokenizers, the lm-evaluation-harness backend."""
