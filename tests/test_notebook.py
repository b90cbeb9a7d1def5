"""examples/quickstart.ipynb executed on a real Jupyter kernel (nbclient), its outputs checked."""

from __future__ import annotations

import ast
import shutil

import pytest

from tests.helpers import ROOT, assert_printed_whole


def outputs(cell) -> tuple[str, list[str]]:
    """(the cell's text output, the MIME types it displayed)."""
    text, kinds = [], []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            text.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            kinds += list(out["data"])
            text.append(out["data"].get("text/plain", ""))
            text.append(out["data"].get("text/html", ""))
        elif out["output_type"] == "error":
            raise AssertionError(f"{out['ename']}: {out['evalue']}")
    return "".join(text), kinds


@pytest.mark.slow
def test_the_quickstart_notebook_runs_on_a_jupyter_kernel(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    # 1 epoch instead of the notebook's 5: the same cells, a shorter wait
    nb.cells[1].source = nb.cells[1].source.replace('"train.epochs": 5', '"train.epochs": 1')
    report = next(c for c in nb.cells if "study.report(" in c.source)  # with the image figures
    report.source = report.source.replace("images=False, tsne_points=0", "tsne_points=100")
    # and around them, issue 27's check of every figure the quick study's report and a run report
    # draw: no text leaves its figure or overlaps another (tests/helpers.every_figure_checked)
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom tests.helpers import every_figure_checked\n"
        "_check = every_figure_checked()\n_checked = _check.__enter__()"))
    nb.cells.append(nbformat.v4.new_code_cell("_check.__exit__(None, None, None)\nprint(sorted(_checked))"))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    checked = ast.literal_eval(outputs(nb.cells[-1])[0])  # the list the kernel printed
    nb.cells = nb.cells[1:-1]
    figures = {p.relative_to(tmp_path / "runs" / "quick" / "report" / "figures").as_posix()
               for p in (tmp_path / "runs" / "quick" / "report" / "figures").rglob("*.png")}
    assert figures <= set(checked) and len(figures) > 60, sorted(figures - set(checked))
    for variant in ("baseline", "both-augment"):
        assert {f"{variant}/{stem}.png" for stem in (
            "curves", "confusion_counts", "roc", "reliability", "per_class_accuracy", "samples",
            "predictions", "misclassified", "gradcam", "tsne", "class_distribution",
            "one_per_class")} <= figures
    assert "both-augment/augmentation.png" in figures
    code = [c for c in nb.cells if c.cell_type == "code"]
    text, kinds = outputs(code[0])
    assert "text/html" in kinds and "Study quick" in text and "10 runs (5 variants × 2 seeds)" in text
    assert "10/10 runs finished" in outputs(code[1])[0]
    table, kinds = outputs(code[2])
    assert "text/html" in kinds and table.count("baseline/seed-") >= 2 and "both+augment/seed-1" in table
    summary, _ = outputs(code[3])
    assert "batchnorm+dropout" in summary and "mean" in summary
    report, kinds = outputs(code[4])
    assert kinds.count("image/png") == 2 and "report.html" in report
    assert (tmp_path / "runs" / "quick" / "report" / "report.html").is_file()
    history, _ = outputs(code[5])
    assert "val_accuracy" in history
    shown, kinds = outputs(code[6])
    assert "text/html" in kinds and "Run seed-0" in shown and "data:image/png;base64," in shown
    # the quick study's report printed (PDF, LaTeX): every column and character on the page
    assert_printed_whole(tmp_path / "runs" / "quick", tmp_path / "printed",
                         ["variants.csv", "paired_tests.csv"])
    shutil.rmtree(tmp_path / "runs")
