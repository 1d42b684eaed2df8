"""Metrics: evaluation, PCA baselines, disentanglement scores, and the results a run keeps in
its folder (codes, projections, scores), computed in the background."""
