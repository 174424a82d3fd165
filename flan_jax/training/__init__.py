"""Training: batches, losses, the optimizer and train step, checkpoints."""
