from __future__ import annotations

import subprocess
import sys

import pytest

from admd_deploy.cli import main


@pytest.mark.parametrize("argv", [["--help"], ["distill", "--help"]])
def test_every_help_works_and_documents_the_flags(argv):
    proc = subprocess.run([sys.executable, "-m", "admd_deploy.cli", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if argv[0] == "distill":
        for flag in ("--teacher", "--student", "--data", "--method", "--task", "--epochs", "--imgsz", "--batch",
                     "--device", "--project", "--name", "--resume", "--loss-weight", "--w-max", "--param"):
            assert flag in proc.stdout, flag


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--teacher", "missing.pt"], "teacher not found"),
        (["--teacher", "yolo11s.yaml", "--method", "admdd"], "distill.method must be one of"),
        (["--teacher", "yolo11s.yaml", "--param", "taux=1"], "taux"),
        (["--teacher", "yolo11s.yaml", "--w-max", "0.5"], "w_max must be >= 1"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path, capsys, extra, message):
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images\nval: images\nnames: {0: a}\n")
    code = main(["distill", "--student", "yolo11n.yaml", "--data", str(data), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_missing_data_file_exits_2(capsys):
    assert main(["distill", "--student", "yolo11n.yaml", "--data", "nope.yaml", "--teacher", "yolo11s.yaml"]) == 2
    assert "data not found" in capsys.readouterr().err
