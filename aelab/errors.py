"""The one exception type users see: a single sentence naming the problem."""


class AelabError(ValueError):
    """A problem with the user's input or files, phrased as one sentence.

    The CLI prints it as one line and exits with status 2; the app shows it
    with ``st.error``. Anything else that escapes is a bug.
    """


class ConfigError(AelabError):
    """An invalid model or training setting."""


class DatasetError(AelabError):
    """An unknown, unavailable or malformed dataset."""


class RunError(AelabError):
    """A run folder that is missing, damaged or refused."""
