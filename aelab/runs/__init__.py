"""Runs: the run-folder format, what a training run writes to it (the recorder), training a
folder in this process, references to run folders, labels and order, who may change a run,
the execution interface with its backends (the local supervisor, Ray), and studies."""
