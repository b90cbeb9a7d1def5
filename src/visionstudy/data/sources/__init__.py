"""Dataset sources; importing this package registers every built-in one."""

from visionstudy.data import sets  # noqa: F401  (registers the sets source)
from visionstudy.data.sources import cifar, digits, idx, imagefolder

__all__ = ["cifar", "digits", "idx", "imagefolder"]
