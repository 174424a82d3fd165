"""Interoperability: Hugging Face models and tokenizers."""
