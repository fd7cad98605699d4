"""benchmarks/learning_curve.sh: every row of the training table, the last included, gets its CPU time."""
import csv
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent

# Stands in for `python -m spacy train`: two table rows, CPU work between them, then it exits at
# once after the last row (as spaCy does after saving), with a status the script must pass on.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "  0       0        1.0   2.0    0.30    0.16    1.88    0.00"
x=0; for i in $(seq 1 200000); do x=$((x + i)); done
echo "  1     200        3.0   4.0   10.00   11.00   12.00    0.10"
exit 3
"""


def test_last_row_gets_the_cpu_time_and_the_status_is_kept(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text(FAKE_PYTHON)
    (fake / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    out = tmp_path / "runs" / "run"
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "learning_curve.sh"), str(out), "config.cfg"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    with (tmp_path / "runs" / "run.curve.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [(r["step"], r["ents_f"]) for r in rows] == [("0", "0.30"), ("200", "10.00")]
    last = float(rows[-1]["cpu_s"])  # the fake's loop costs a fraction of a CPU second at least
    assert last > 0.05 and last >= float(rows[0]["cpu_s"])
