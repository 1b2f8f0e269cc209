"""The README's quick start runs as written: its shell block line by line, then its Python block.

Set up as the README says ("in a folder with your text in corpus/ ... train.csv / dev.csv with
text,label columns and new.csv"): two Gutenberg books and SST-2 rows stand in for the user's
files. The set-up commands (runs/demo.sh, runs/test.sh) are what CI and tests/test_demo.py run;
the "On a GPU" block is run at toy size by tests/test_gpu_dry_run.py.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from electra.paths import data_dir

REPO = Path(__file__).resolve().parents[1]
NEEDED = ["glue/CoLA/train.tsv", "glue/CoLA/dev.tsv", "glue/RTE/train.tsv", "glue/RTE/dev.tsv", "glue/SST-2/train.tsv",
          "corpus/gutenberg/books"]
missing = [n for n in NEEDED if not (data_dir() / n).exists()]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"the quick start fine-tunes on GLUE CoLA and RTE from {data_dir()}, "
                                                      f"which lacks {', '.join(missing[:2])}")


def quick_start_blocks() -> tuple[str, str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Quick start"):text.index("\n## ", text.index("## Quick start") + 5)]
    bash = re.findall(r"```bash\n(.*?)```", section, re.S)
    python = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(bash) == 1 and len(python) == 1, "the quick start is one shell block and one Python block"
    return bash[0], python[0]


def users_folder(folder: Path) -> None:
    books = sorted((data_dir() / "corpus" / "gutenberg" / "books").glob("*.txt.gz"))[:2]
    (folder / "corpus").mkdir()
    for b in books:
        shutil.copyfile(b, folder / "corpus" / b.name)
    rows = (data_dir() / "glue" / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = [r.split("\t") for r in rows[::300]]  # ~225 rows, both labels
    for name, part in (("train.csv", rows[:160]), ("dev.csv", rows[160:])):
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows([(t, "pos" if y == "1" else "neg") for t, y in part])
    with open(folder / "new.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        w.writerows([[t] for t, _ in rows[:12]])


def test_quick_start_runs_as_written(tmp_path):
    shell, python = quick_start_blocks()
    users_folder(tmp_path)
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "ELECTRA_DATA": str(data_dir()), "OMP_NUM_THREADS": "2", "TQDM_DISABLE": "1"}
    lines = [ln for ln in shell.splitlines() if ln.strip()]
    assert [ln.split()[0] for ln in lines] == ["electra"] * 7 + ["python"]
    for line in lines:
        r = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    with open(tmp_path / "predictions.csv", encoding="utf-8") as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == 12 and {p["prediction"] for p in preds} <= {"neg", "pos"}
    assert all(abs(float(p["p(neg)"]) + float(p["p(pos)"]) - 1) < 1e-4 for p in preds)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 200
    assert "CoLA" in json.loads((tmp_path / "ft-cola" / "results.json").read_text())["tasks"]
    assert "'label'" in r.stdout and "'score'" in r.stdout  # the pipeline's answer, printed by the last line

    r = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.strip().splitlines()
    assert 0 <= float(out[-2]) <= 1  # the custom task's median dev accuracy
    rte = [float(line.split(": ")[1]) for line in out if line.startswith("RTE dev accuracy: ")]
    assert len(rte) == 1 and 0 <= rte[0] <= 1
    assert json.loads((tmp_path / "ft-py-rte" / "results.json").read_text())["tasks"]["RTE"]["score_median"] == rte[0]
    first, second = re.findall(r"\{'label': '(neg|pos)', 'probabilities': \{'neg': ([0-9.e-]+), 'pos': ([0-9.e-]+)\}\}",
                               out[-1])
    for _, p_neg, p_pos in (first, second):
        assert abs(float(p_neg) + float(p_pos) - 1) < 1e-6
    assert json.loads((tmp_path / "hf-py" / "config.json").read_text())["architectures"] == [
        "ElectraForSequenceClassification"]


def test_python_api_refuses_bad_input_with_user_errors(tmp_path):
    """The API raises UserError (the CLI's one-line message) for what a notebook user gets wrong."""
    import electra
    from electra.errors import UserError

    with pytest.raises(UserError, match="needs train_file and dev_file"):
        electra.finetune(tmp_path, tmp_path / "out", task="custom")
    with pytest.raises(UserError, match="not a fine-tuned model"):
        electra.predict(tmp_path, ["a text"])
    assert not (tmp_path / "out").exists()


def test_no_module_shadows_an_api_function():
    """`electra.finetune(...)` stays the API function after any submodule import: no module or package
    of electra has an API function's name (importing one for the first time would rebind the
    attribute on the package, as the `finetune` package once did to `electra.finetune`)."""
    import importlib.util

    import electra

    for name in electra.__all__:
        if name.startswith("__"):
            continue
        assert callable(getattr(electra, name)), name
        assert importlib.util.find_spec(f"electra.{name}") is None, f"electra.{name} is a module"
    import electra.finetuning.glue  # noqa: F401  (the import that once replaced the function)

    assert callable(electra.finetune)
