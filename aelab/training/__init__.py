"""Training: the entry points' checks (setup), the trainer loop, the optimiser, presets, and the
recipes of the shipped demo runs."""
