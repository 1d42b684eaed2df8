"""Datasets: the named offline datasets, checks of user-given .npz files, and the procedural
shapes sprites whose generative factors are known."""
