"""User-facing errors: each message names the problem and the fix; the CLI prints it without a traceback."""


class VisionStudyError(Exception):
    """An error caused by the user's input or environment, not by a bug in visionstudy."""


class ConfigError(VisionStudyError):
    """A config or study file holds a value that cannot work."""


class DataError(VisionStudyError):
    """A dataset is missing, damaged, or cannot be split as asked."""


class CheckpointError(VisionStudyError):
    """A checkpoint is missing, damaged, or not a visionstudy checkpoint."""


class TrainingError(VisionStudyError):
    """Training cannot go on (non-finite loss, an existing finished run)."""


class ReportError(VisionStudyError):
    """A report cannot be built: the folder is not a run or study, or an input is unreadable."""


class StorageError(VisionStudyError):
    """Where results are kept fails: a file cannot be written or a folder created (disk full,
    permission denied, read-only), or the run database cannot be opened or holds a conflicting study."""
