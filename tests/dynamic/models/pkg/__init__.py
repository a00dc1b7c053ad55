"""A package whose model uses a relative import (the worker must load it as pkg.net)."""
