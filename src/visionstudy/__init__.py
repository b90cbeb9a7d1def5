"""visionstudy: a whole image-classification study as files and one command.

    import visionstudy as vs
    run = vs.train("examples/digits-quick.yaml", set={"train.epochs": 5})
    study = vs.Study.load("recipe:quick"); study.run(workers=2); study.results()

The names below load on first use, so `import visionstudy` stays light (no torch until needed).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

API = ("train", "Run", "compare", "Study", "load_dataset", "create_model", "recipes")
ERRORS = ("VisionStudyError", "ConfigError", "DataError", "CheckpointError", "TrainingError", "ReportError",
          "StorageError")
__all__ = [*API, *ERRORS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in API:
        from visionstudy import api

        return getattr(api, name)
    if name in ERRORS:
        from visionstudy import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'visionstudy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
