"""aelab: every autoencoder of the survey behind one contract, with a trainer,
run folders, evaluation and a Streamlit app on top."""
__version__ = "0.1.0"

from aelab.data.datasets import Dataset, list_datasets, load_dataset  # noqa: E402,F401
from aelab.errors import AelabError, ConfigError, DatasetError, RunError  # noqa: E402,F401
from aelab.models import build_model, get_variant, list_variants, make_config, register  # noqa: E402,F401
