"""aelab: every autoencoder of the survey behind one contract, with a trainer,
run folders, evaluation and a Streamlit app on top.

The names below are imported on first use (``aelab.lazy``): ``import aelab.<module>`` then
costs only that module, and PyTorch loads when a model or dataset is first asked for."""
__version__ = "0.1.0"

from aelab.lazy import lazy_names  # noqa: E402

lazy_names(__name__, globals(), {
    "aelab.data.datasets": ("Dataset", "list_datasets", "load_dataset"),
    "aelab.errors": ("AelabError", "ConfigError", "DatasetError", "RunError"),
    "aelab.models": ("build_model", "get_variant", "list_variants", "make_config", "register"),
})
