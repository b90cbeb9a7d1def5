"""visionstudy: a whole image-classification study as files and one command."""

__version__ = "0.1.0"
