"""Dataset sources; importing this package registers every built-in one."""

from visionstudy.data.sources import cifar, digits, idx, imagefolder

__all__ = ["cifar", "digits", "idx", "imagefolder"]
