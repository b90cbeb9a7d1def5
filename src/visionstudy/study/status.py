"""Find a study for `study status` and `report`: from its file, a recipe, or its runs folder."""

from __future__ import annotations

from pathlib import Path

from visionstudy.errors import ConfigError
from visionstudy.study.execute import Placement
from visionstudy.study.spec import Study, StudyConfig, expand, load_study


def is_study_dir(path: Path) -> bool:
    return (path / "study.yaml").is_file()


def load_study_dir(path: Path) -> Study:
    """The study as it was run (study.yaml written by `study run`, with its --set overrides)."""
    import yaml

    doc = yaml.safe_load((path / "study.yaml").read_text()) or {}
    overrides = doc.pop("overrides", [])
    source = doc.pop("source", str(path / "study.yaml"))
    return expand(StudyConfig.model_validate(doc), overrides, source)


def load_for_status(target: str, overrides: list[str], runs_dir: Path,
                    db: str | None) -> tuple[Study, Placement]:
    path = Path(target)
    if path.is_dir():
        if not is_study_dir(path):
            raise ConfigError(f"{path}: not a study folder (no study.yaml); give the study file")
        return load_study_dir(path), Placement(path.parent, db)
    return load_study(target, overrides), Placement(runs_dir, db)
