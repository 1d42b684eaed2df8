"""Runs: the run-folder format, references to run folders, labels and order, who may change
a run, the execution interface with its backends (the local supervisor, Ray), and studies."""
