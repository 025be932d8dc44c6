"""l1ad: the command line and the pipeline that strings the stages together."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("l1ad")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
