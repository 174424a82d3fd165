"""Data: templates, preprocessors, vocabularies, dataset specs and sources, mixing, the seqio
registry, packing and the offline suite."""
