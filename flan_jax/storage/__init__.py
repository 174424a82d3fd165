"""Storage: the one path layer (:mod:`.fs`) every flan_jax file read or write goes through."""
