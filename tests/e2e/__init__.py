"""Browser tests. A package, so that its conftest is imported as ``e2e.conftest`` and does
not shadow tests/conftest.py (other test modules do ``from conftest import ...``)."""
