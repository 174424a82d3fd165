"""Evaluation: reports, the paper's published results and plots, the lm-eval backend."""
