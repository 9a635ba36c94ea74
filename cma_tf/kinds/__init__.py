"""Data kinds by `config.data.format`: see `registry.py`; one module per kind."""
