"""What the command line says, in-process: --version, closed pipes, --plot formats, the hint
for a leading '-', model files that are not models, width mismatches, bugs keep tracebacks,
and the fitting defaults that leave EM's plateaus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gaussmix import __version__
from gaussmix.cli.app import app
from gaussmix.datasets import load_faithful
from tests.cli.conftest import write_faithful_csv


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def faithful_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_faithful_csv(tmp_path_factory.mktemp("faithful"))


@pytest.fixture(scope="module")
def model(faithful_csv: Path) -> Path:
    path = faithful_csv.parent / "m.npz"
    assert _run("fit", faithful_csv, "-k", 2, "--n-init", 1, "--out", path).exit_code == 0
    return path


def test_version() -> None:
    result = _run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"gaussmix {__version__}\n"


def test_closed_pipe_ends_quietly_with_exit_0(
    model: Path, faithful_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ClosedPipe:
        def writerow(self, row: object) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        writerows = writerow

    monkeypatch.setattr("gaussmix.cli.commands_em.csv.writer", lambda *a, **k: ClosedPipe())
    result = _run("predict", model, faithful_csv)
    assert result.exit_code == 0
    assert result.stderr == ""


def test_closed_pipe_of_a_real_process(model: Path, faithful_csv: Path) -> None:
    script = (
        f"{sys.executable} -m gaussmix.cli.main predict {model} {faithful_csv} | head -n 2; "
        "echo status=${PIPESTATUS[0]} >&2"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0] == "component"
    assert done.stderr.strip() == "status=0"


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".pdf", b"%PDF"), (".svg", b"<?xml"), (".png", b"\x89PNG")]
)
def test_plot_writes_the_format_its_suffix_names(
    faithful_csv: Path, tmp_path: Path, suffix: str, magic: bytes
) -> None:
    picture = tmp_path / f"x{suffix}"
    result = _run("fit", faithful_csv, "-k", 2, "--n-init", 1, "--plot", picture)
    assert result.exit_code == 0, result.output
    assert picture.read_bytes().startswith(magic)


def test_plot_refuses_an_unknown_suffix_before_fitting(faithful_csv: Path, tmp_path: Path) -> None:
    result = _run("fit", faithful_csv, "-k", 2, "--plot", tmp_path / "x.jpeg")
    assert result.exit_code == 1
    assert "the suffix '.jpeg' names no format gaussmix writes; use .png, .pdf, .svg" in (
        " ".join(result.stderr.split())
    )
    assert result.stdout == ""


def test_leading_minus_gets_a_hint() -> None:
    result = _run("grad", "-x'*A*x", "--wrt", "x")
    assert result.exit_code == 2
    text = " ".join(result.stderr.split())
    assert "put it after --" in text
    fixed = _run("grad", "--wrt", "x", "--", "-x'*A*x")
    assert fixed.exit_code == 0, fixed.output


def test_model_file_that_is_not_a_model(faithful_csv: Path) -> None:
    result = _run("predict", faithful_csv, faithful_csv)
    assert result.exit_code == 1
    assert "pickle" not in result.stderr and "allow_pickle" not in result.stderr
    assert "is not a gaussmix model but a text file" in result.stderr


def test_width_mismatch_names_both_sides(model: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b,c\n1,2,3\n4,5,6\n")
    result = _run("predict", model, other)
    assert result.exit_code == 1
    text = " ".join(result.stderr.split())
    assert "m.npz was fitted on 2 columns (eruptions, waiting)" in text
    assert "other.csv has 3 numeric columns (a, b, c): choose the model's with --columns" in text
    chosen = _run("predict", model, other, "--columns", "a,c")
    assert chosen.exit_code == 0, chosen.output


def test_predict_finds_the_model_columns_by_name(model: Path, tmp_path: Path) -> None:
    data = load_faithful()
    shuffled = tmp_path / "shuffled.csv"
    rows = "".join(f"x,{w},{e}\n" for e, w in data.X)
    shuffled.write_text("id,waiting,eruptions\n" + rows)
    result = _run("predict", model, shuffled)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == len(data.X) + 1


def test_a_bug_keeps_its_traceback(faithful_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug, not the user's fault")

    monkeypatch.setattr("gaussmix.data.files.open_data", broken)
    result = _run("fit", faithful_csv, "-k", 2)
    assert isinstance(result.exception, ValueError)  # not turned into an 'error:' line
    assert "error:" not in result.stderr


def test_fit_defaults_leave_the_plateau_on_old_faithful(faithful_csv: Path) -> None:
    # scikit-learn's library defaults stop at -1140.5 here (README, "Why the defaults differ")
    result = _run("fit", faithful_csv, "-k", 3, "-c", "tied", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["log_likelihood"] == pytest.approx(-1126.3, abs=0.05)


def test_info_scores_a_data_file(model: Path, faithful_csv: Path) -> None:
    result = _run("info", model, "--data", faithful_csv, "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored["data"]["n_samples"] == 272
    assert scored["data"]["log_likelihood"] == pytest.approx(scored["log_likelihood"], rel=1e-6)


def test_a_scaled_fit_says_so(faithful_csv: Path) -> None:
    table = _run("fit", faithful_csv, "-k", 2, "--n-init", 1, "--scale")
    assert "log-likelihood of the standardised data" in " ".join(table.stdout.split())
    as_json = json.loads(
        _run("fit", faithful_csv, "-k", 2, "--n-init", 1, "--scale", "--json").stdout
    )
    assert as_json["units"].startswith("standardised") and as_json["scaling"] is not None
    plain = json.loads(_run("fit", faithful_csv, "-k", 2, "--n-init", 1, "--json").stdout)
    assert plain["units"] == "data"


def test_predict_reads_standard_input(model: Path, faithful_csv: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(model), "-"], input=faithful_csv.read_text())
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "component"
    assert len(result.stdout.splitlines()) == 273
