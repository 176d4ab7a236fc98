"""--prior mclust on gaussmix fit and select, in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gaussmix import GaussianMixture
from gaussmix.datasets import load_faithful


def test_fit_with_the_prior_is_the_librarys_map_fit(gaussmix_cli, faithful_csv: Path) -> None:
    out = faithful_csv.with_name("model.npz")
    result = gaussmix_cli("fit", faithful_csv, "-k", 2, "--prior", "mclust", "--json", "--out", out)
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)
    reference = GaussianMixture(
        2, n_init=5, tol=1e-5, max_iter=1000, random_state=0, prior="mclust"
    ).fit(load_faithful().X)
    np.testing.assert_allclose(fitted["means"], reference.means_)
    assert fitted["log_likelihood"] == pytest.approx(reference.log_likelihood_)
    assert GaussianMixture.load(out).prior == "mclust"
    table = gaussmix_cli("fit", faithful_csv, "-k", 2, "--prior", "mclust")
    assert "MAP with mclust's prior: log-likelihood -1130.509" in table.stdout


def test_select_with_the_prior(gaussmix_cli, faithful_csv: Path) -> None:
    result = gaussmix_cli(
        "select", faithful_csv, "-k", "2..3", "-c", "EEE,VVV", "--prior", "mclust", "--jobs", 1
    )
    assert result.exit_code == 0, result.output
    # mclustBIC(faithful, prior = priorControl()) chooses EEE,3 with BIC -2314.549
    assert "4 fits, each from mclust's hierarchical start" in result.stdout
    assert "MAP with mclust's prior" in result.stdout
    assert "BIC chooses tied (EEE) with K=3" in result.stdout
    # at least mclust's: select runs the best fits on to a tighter tolerance than mclust's
    found = re.search(r"mclust's sign: BIC (-\d+\.\d+)", result.stdout)
    assert found is not None and -2314.549 - 0.005 <= float(found.group(1)) < -2314.4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--prior", "jeffreys"), "unknown prior 'jeffreys'; use --prior mclust"),
    ],
)
def test_a_bad_prior_option_is_one_line(
    gaussmix_cli, faithful_csv: Path, args: tuple[str, ...], message: str
) -> None:
    result = gaussmix_cli("fit", faithful_csv, "-k", 2, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_info_names_the_prior(gaussmix_cli, faithful_csv: Path) -> None:
    out = faithful_csv.with_name("model.npz")
    assert gaussmix_cli("fit", faithful_csv, "-k", 2, "--prior", "mclust", "-o", out).exit_code == 0
    result = gaussmix_cli("info", out)
    assert result.exit_code == 0, result.output
    assert "reg_covar 1e-06, prior mclust)" in result.stdout


def test_a_constant_column_under_the_full_prior_is_one_line(gaussmix_cli, tmp_path: Path) -> None:
    """mclust's default scale for the whole-matrix models is var(X) / K^(2/D): singular along a
    constant column, a user error, not a traceback."""
    data = tmp_path / "constant.csv"
    data.write_text("a,b\n1,5\n2,5\n3,5\n4,5\n5,5\n6,5\n")
    result = gaussmix_cli("fit", data, "-k", 2, "-c", "VVV", "--prior", "mclust")
    assert result.exit_code == 1
    assert "error: the prior's scale must be positive" in result.output
    assert "Traceback" not in result.output
