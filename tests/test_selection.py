"""gaussmix.select: the grid, its criteria, the degeneracy rule, the Old Faithful choice, and
the pictures of a selection."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy.special import xlogy
from sklearn.exceptions import ConvergenceWarning

import gaussmix
from gaussmix import GaussianMixture, SelectionResult, select, selection
from gaussmix.em.hc import HC_MAX_ROWS
from gaussmix.em.lean import zero_variance_is_singular
from gaussmix.plotting import (
    criterion_figure,
    draw_criterion_curves,
    fit_figure,
    selection_figure,
)
from gaussmix.selection import (
    CONTENDERS,
    CONTEST_STARTS,
    MCLUST_STARTS,
    _contest_starts,
    _start_from,
    classification_entropy,
    min_relative_variance,
)
from tests.conftest import mixture_data

# Small fits for everything but the reference case: one initialisation, no worker processes.
FAST = {"n_init": 1, "random_state": 0, "n_jobs": 1}


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    return mixture_data(3, n=300, n_features=2, n_components=3)


@pytest.fixture(scope="module")
def small(blobs: np.ndarray) -> SelectionResult:
    return select(blobs, range(1, 4), ("spherical", "VVV"), **FAST)


@pytest.fixture(scope="module")
def faithful_selection(faithful: np.ndarray) -> SelectionResult:
    # the defaults but the four scikit-learn types, both cores: nothing here is tuned for this
    # data (all fourteen models: tests/em/test_covariance_models.py and the benchmark)
    return select(faithful, covariance_types=("spherical", "diag", "tied", "full"), random_state=0)


def collapsing_data() -> np.ndarray:
    """A round blob and 30 rows that share one value of the second feature exactly (as
    Old Faithful's integer waiting times do): a diagonal component can sit on them."""
    rng = np.random.default_rng(0)
    blob = rng.normal(size=(200, 2))
    line = np.column_stack([rng.normal(4.0, 1.0, size=30), np.full(30, 5.0)])
    return np.vstack([blob, line])


# ------------------------------------------------------------------ the grid


def test_grid_has_every_cell_in_order(small: SelectionResult) -> None:
    cells = [(r.n_components, r.covariance_type) for r in small.records]
    assert cells == [(k, t) for t in ("spherical", "full") for k in (1, 2, 3)]
    assert [r.mclust for r in small.records] == ["VII"] * 3 + ["VVV"] * 3
    assert small.grid().shape == (3, 2)
    assert set(small.models) == set(cells)


def test_each_cell_is_the_gaussian_mixture_fit(blobs: np.ndarray, small: SelectionResult) -> None:
    polished = 0
    for record in small.records:
        alone = GaussianMixture(
            record.n_components,
            covariance_type=record.covariance_type,
            n_init=1,  # select's first start is mclust's hierarchical one
            init_params="hc",
            random_state=0,
            tol=1e-5,
            convergence="relative",  # mclust's rule, select's default
            max_iter=1000,
        ).fit(blobs)
        if record.n_iter > alone.n_iter_:  # near the best: run on to polish_tol
            polished += 1
            first = alone.n_iter_
            alone.set_params(warm_start=True, tol=1e-7).fit(blobs)
            assert record.n_iter == first + alone.n_iter_
        assert record.log_likelihood == pytest.approx(alone.log_likelihood_, rel=1e-9)
        assert record.n_parameters == alone._n_parameters()
        assert record.bic == pytest.approx(alone.bic(blobs), rel=1e-9)
        assert record.aic == pytest.approx(alone.aic(blobs), rel=1e-9)
    assert polished >= 1  # the best cell at least


def test_sign_conventions(small: SelectionResult, blobs: np.ndarray) -> None:
    n = blobs.shape[0]
    for r in small.records:
        assert r.bic == pytest.approx(-2 * r.log_likelihood + r.n_parameters * math.log(n))
        assert r.bic_mclust == pytest.approx(2 * r.log_likelihood - r.n_parameters * math.log(n))
        assert r.icl_mclust == -r.icl and r.aic_mclust == -r.aic
    np.testing.assert_array_equal(small.grid("bic", mclust_sign=True), -small.grid("bic"))


def test_best_is_the_lowest_eligible_criterion(small: SelectionResult) -> None:
    for criterion in ("bic", "icl", "aic"):
        ranked = small.ranking(criterion)
        values = [r.value(criterion) for r in ranked]
        assert values == sorted(values)
        eligible = [r for r in small.records if r.eligible]
        assert ranked[0].value(criterion) == min(r.value(criterion) for r in eligible)
    best = small.best_record
    assert small.best is small.models[(best.n_components, best.covariance_type)]
    assert small.best.n_components == best.n_components
    assert best.n_components == 3  # three well separated blobs


def test_criterion_picks_the_best(blobs: np.ndarray) -> None:
    by_aic = select(blobs, range(1, 4), ("spherical", "full"), criterion="aic", **FAST)
    assert by_aic.best_record is by_aic.ranking("aic")[0]
    assert by_aic.criterion == "aic"


def test_to_dict_and_to_pandas(small: SelectionResult) -> None:
    document = json.loads(json.dumps(small.to_dict()))
    assert document["best"]["n_components"] == small.best_record.n_components
    assert len(document["fits"]) == 6
    first = document["fits"][0]
    assert first["bic_mclust"] == pytest.approx(-first["bic"])
    assert {"log_likelihood", "n_parameters", "icl", "aic", "degenerate", "mclust"} <= set(first)
    frame = small.to_pandas()
    assert len(frame) == 6
    np.testing.assert_allclose(frame["bic"], [r.bic for r in small.records])
    np.testing.assert_allclose(frame["icl_mclust"], [-r.icl for r in small.records])


def test_dataframe_keeps_column_names(blobs: np.ndarray) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(blobs, columns=["a", "b"])
    result = select(frame, [1, 2], "full", **FAST)
    assert list(result.best.feature_names_in_) == ["a", "b"]


def test_progress_is_called_once_per_fit(blobs: np.ndarray) -> None:
    seen: list[str] = []
    select(blobs, [1, 2], ("diag", "tied"), progress=lambda r: seen.append(r.model_name), **FAST)
    assert sorted(seen) == ["EEE,1", "EEE,2", "VVI,1", "VVI,2"]


def test_random_state_instance_is_reproducible(blobs: np.ndarray) -> None:
    kwargs = {"n_init": 1, "n_jobs": 1}
    a = select(blobs, [2, 3], "full", random_state=np.random.RandomState(5), **kwargs)
    b = select(blobs, [2, 3], "full", random_state=np.random.RandomState(5), **kwargs)
    assert [r.log_likelihood for r in a.records] == [r.log_likelihood for r in b.records]


def test_processes_give_the_serial_result(blobs: np.ndarray) -> None:
    serial = select(blobs, [1, 2, 3], "tied", n_init=1, random_state=0, n_jobs=1)
    parallel = select(blobs, [1, 2, 3], "tied", n_init=1, random_state=0, n_jobs=2)
    assert [r.bic for r in serial.records] == pytest.approx([r.bic for r in parallel.records])


def test_non_convergence_is_one_warning(blobs: np.ndarray) -> None:
    with pytest.warns(ConvergenceWarning, match="2 of 2 fits did not converge") as caught:
        select(blobs, [2, 3], "full", max_iter=1, tol=0.0, **FAST)
    assert len([w for w in caught if w.category is ConvergenceWarning]) == 1


# ------------------------------------------------------------------ ICL


def test_icl_is_bic_plus_twice_the_entropy_of_the_responsibilities(
    blobs: np.ndarray, small: SelectionResult
) -> None:
    for record in small.records:
        model = small.models[(record.n_components, record.covariance_type)]
        assert model is not None
        resp = model.predict_proba(blobs)
        entropy = -sum(t * math.log(t) for t in resp.ravel() if t > 0)
        assert record.entropy == pytest.approx(entropy, rel=1e-9, abs=1e-9)
        assert record.icl == pytest.approx(record.bic + 2 * entropy, rel=1e-12)
        assert record.icl >= record.bic
    assert small.record(1, "full").entropy == 0.0  # one component: no doubt where a row belongs


def test_entropy_in_blocks_equals_the_whole(
    blobs: np.ndarray, small: SelectionResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = small.best
    resp = model.predict_proba(blobs)
    whole = -float(xlogy(resp, resp).sum())
    monkeypatch.setattr("gaussmix.selection._BLOCK_ROWS", 7)
    assert classification_entropy(model, blobs) == pytest.approx(whole, rel=1e-12)


# ------------------------------------------------------------------ degenerate fits


def _hand_model(covariance_type: str, covariances: np.ndarray, reg_covar: float) -> GaussianMixture:
    model = GaussianMixture(2, covariance_type=covariance_type, reg_covar=reg_covar)
    model.means_ = np.zeros((2, 2))
    model.weights_ = np.array([0.5, 0.5])
    model.covariances_ = covariances
    return model


@pytest.mark.parametrize(
    ("covariance_type", "covariances", "expected"),
    [
        ("full", np.array([[[2.0, 0.0], [0.0, 0.5]], [[4.0, 0.0], [0.0, 1.0]]]), 0.5),
        ("diag", np.array([[2.0, 0.5], [4.0, 3.0]]), 0.5),
        ("spherical", np.array([1.0, 8.0]), 0.25),
        ("tied", np.array([[2.0, 0.0], [0.0, 0.25]]), 0.25),
    ],
)
def test_min_relative_variance_by_hand(
    covariance_type: str, covariances: np.ndarray, expected: float
) -> None:
    # data variances 4 and 1: the smallest variance relative to the data's, after the
    # regularisation is taken back out
    reg = 1e-3
    matrix_layout = covariance_type in ("full", "tied")
    matrices = covariances + (reg * np.eye(2) if matrix_layout else reg)
    model = _hand_model(covariance_type, matrices, reg)
    assert min_relative_variance(model, np.array([4.0, 1.0])) == pytest.approx(expected)


def test_min_relative_variance_does_not_depend_on_units() -> None:
    cov = np.array([[[2.0, 0.3], [0.3, 0.5]], [[4.0, -1.0], [-1.0, 1.0]]])
    units = np.array([1000.0, 0.01])
    a = min_relative_variance(_hand_model("full", cov, 0.0), np.array([4.0, 1.0]))
    b = min_relative_variance(
        _hand_model("full", cov * np.outer(units, units), 0.0), np.array([4.0, 1.0]) * units**2
    )
    assert a == pytest.approx(b, rel=1e-9)


@pytest.mark.parametrize("name", ["diag", "spherical", "EII", "EEI", "VEI", "EVI", "E", "V"])
def test_min_relative_variance_of_diagonal_models_is_their_matrices_eigenvalue(name: str) -> None:
    from gaussmix.em import get_covariance

    # read off the stored variances: the same number, to the bit, as the smallest eigenvalue
    # of the scaled matrices (whose diagonals they are)
    n_features = 1 if name in ("E", "V") else 3
    X = mixture_data(2, n=200, n_features=n_features, n_components=3)
    model = GaussianMixture(3, covariance_type=name, random_state=0).fit(X)
    variance = X.var(axis=0) * np.array([1.0, 30.0, 0.2])[:n_features]
    cov = get_covariance(name)
    matrices = cov.per_component(model.covariances_, 3, n_features)
    inv_sd = 1.0 / np.sqrt(variance)
    scaled = (matrices - model.reg_covar * np.eye(n_features)) * np.outer(inv_sd, inv_sd)
    expected = np.diagonal(scaled, axis1=1, axis2=2).min()
    assert min_relative_variance(model, variance) == expected
    assert expected == pytest.approx(np.linalg.eigvalsh(scaled)[:, 0].min(), rel=1e-12)


def test_collapse_is_marked_degenerate_and_never_chosen() -> None:
    X = collapsing_data()
    result = select(X, [1, 2, 3], ("diag", "full"), reg_covar=1e-6, **FAST)
    degenerate = [r for r in result.records if r.degenerate]
    assert degenerate, "a component should sit on the rows with x1 == 5"
    for r in degenerate:
        assert r.min_relative_variance <= result.singular_tol
        assert not r.eligible
        assert r not in result.ranking()
    # the rule matters here: by plain BIC a degenerate fit would win
    assert min(degenerate, key=lambda r: r.bic).bic < result.best_record.bic
    assert not result.best_record.degenerate
    assert result.best_record.min_relative_variance > 1e-3
    assert result.degenerate_mask().sum() == len(degenerate)


def test_singular_tol_is_the_threshold(blobs: np.ndarray, small: SelectionResult) -> None:
    for r in small.records:
        assert r.degenerate == (r.min_relative_variance <= small.singular_tol)
    # below 10 times the data's variance, every fit "has no spread": none can be chosen
    with pytest.raises(ValueError, match="no fit of the grid can be chosen"):
        select(blobs, [1, 2], "full", singular_tol=10.0, **FAST)


def test_singular_fits_without_reg_covar_fail_alone() -> None:
    result = select(collapsing_data(), [1, 2], ("diag", "spherical"), reg_covar=0.0, **FAST)
    failed = [r for r in result.records if r.error is not None]
    assert [r.model_name for r in failed] == ["VVI,2"]
    assert "not positive" in failed[0].error
    assert math.isnan(failed[0].bic) and not failed[0].eligible
    assert result.models[(2, "diag")] is None
    assert np.isnan(result.grid()[1, 0]) and result.degenerate_mask()[1, 0]
    assert result.to_dict()["fits"][1]["bic"] is None  # JSON has no NaN
    assert result.best_record.error is None


def test_nothing_eligible_is_an_error() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=100)
    collinear = np.column_stack([x, 2.0 * x])
    with pytest.raises(ValueError, match="no fit of the grid can be chosen"):
        select(collinear, [1], "full", **FAST)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_components": []}, "n_components is empty"),
        ({"n_components": [0, 1]}, "integers >= 1"),
        ({"covariance_types": ["VXV"]}, "unknown covariance type 'VXV'"),
        ({"covariance_types": []}, "covariance_types is empty"),
        ({"criterion": "dic"}, "unknown criterion 'dic'"),
        ({"n_components": [500]}, "only 300 rows"),
        ({"singular_tol": -1.0}, "singular_tol must be >= 0"),
    ],
)
def test_bad_arguments(blobs: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        select(blobs, **({"n_jobs": 1} | kwargs))


def test_constant_column_is_an_error(blobs: np.ndarray) -> None:
    X = np.column_stack([blobs, np.full(len(blobs), 3.0)])
    with pytest.raises(ValueError, match="column 2 of the data is constant"):
        select(X, [1, 2], **FAST)


# ------------------------------------------------------------------ the reference case


def test_old_faithful_chooses_tied_with_three_components(
    faithful_selection: SelectionResult, faithful: np.ndarray
) -> None:
    """mclust's choice on this data: EEE with K=3, log-likelihood about -1126.3."""
    result = faithful_selection
    best = result.best_record
    assert (best.covariance_type, best.mclust, best.n_components) == ("tied", "EEE", 3)
    assert best.log_likelihood == pytest.approx(-1126.3, abs=0.1)
    assert result.best.log_likelihood_ == best.log_likelihood
    assert best.bic == pytest.approx(result.best.bic(faithful), rel=1e-9)
    assert best.bic_mclust == pytest.approx(-2314.3, abs=0.2)
    assert len(result.records) == 36
    # whatever plain BIC would pick instead of it is a degenerate fit
    plain = min((r for r in result.records if r.error is None), key=lambda r: r.bic)
    assert plain is best or plain.degenerate


def test_old_faithful_degenerate_fits_have_no_spread(
    faithful_selection: SelectionResult, faithful: np.ndarray
) -> None:
    for r in faithful_selection.records:
        if not r.degenerate:
            assert r.min_relative_variance > 1e-6  # a wide gap below which the rule cuts
            continue
        model = faithful_selection.models[(r.n_components, r.covariance_type)]
        assert model is not None
        labels = model.predict(faithful)
        # some component's rows (a single row, at the extreme) share one value of a column
        spreads = [
            np.ptp(faithful[labels == k], axis=0).min()
            for k in range(r.n_components)
            if (labels == k).any()
        ]
        assert min(spreads) == 0.0


# ------------------------------------------------------------------ pictures


def _png(fig: Figure) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def test_criterion_curves_ring_the_choice_and_cross_out_degenerate_fits() -> None:
    result = select(collapsing_data(), [1, 2, 3], ("diag", "full"), reg_covar=1e-6, **FAST)
    fig = Figure()
    ax = fig.subplots()
    draw_criterion_curves(ax, result)
    ring = [line for line in ax.lines if line.get_markersize() == 20]
    assert len(ring) == 1
    best = result.best_record
    assert list(ring[0].get_xdata()) == [best.n_components]
    assert list(ring[0].get_ydata()) == pytest.approx([-best.bic])
    crosses = [
        line for line in ax.lines if line.get_marker() == "x" and line.get_linestyle() == "None"
    ]
    crossed = sum(len(line.get_xdata()) for line in crosses)
    # the others are arrows at the top edge
    top = ax.get_ylim()[1]
    above = [a for a in ax.texts if a.get_text() == "" and a.xy[1] == top]
    degenerate = [r for r in result.records if r.degenerate]
    assert degenerate and crossed + len(above) == len(degenerate)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "VVI (diag)" in labels and "VVV (full)" in labels


def test_selection_figures(small: SelectionResult, blobs: np.ndarray) -> None:
    assert _png(criterion_figure(small))[:4] == b"\x89PNG"
    fig = selection_figure(blobs, small, ["a", "b"])
    assert len(fig.axes) == 2
    assert _png(fig)[:4] == b"\x89PNG"


def test_pictures_for_one_and_three_features() -> None:
    X3 = mixture_data(1, n=150, n_features=3)
    result = select(X3, [1, 2], "full", **FAST)
    fig = selection_figure(X3, result, ["p", "q", "r"])
    # the curves, a 2 x 2 pairs plot of the first two discriminant coordinates and a hidden
    # axis per histogram on its diagonal
    assert len(fig.axes) == 1 + 4 + 2
    assert _png(fig)[:4] == b"\x89PNG"
    X1 = mixture_data(2, n=150, n_features=1)
    model = GaussianMixture(2, random_state=0).fit(X1)
    fig1 = fit_figure(X1, model, ["x"])
    density_axis = fig1.axes[0]
    assert density_axis.get_ylabel() == "density"
    # the stacked bars are a density: their areas add up to one
    heights = sum(p.get_height() * p.get_width() for p in density_axis.patches)
    assert heights == pytest.approx(1.0)
    assert _png(fit_figure(X3, result.best, ["p", "q", "r"]))[:4] == b"\x89PNG"


def test_select_is_exported() -> None:
    assert gaussmix.select is select
    assert "select" in gaussmix.__all__ and "SelectionResult" in gaussmix.__all__


def test_warnings_of_single_fits_do_not_leak(blobs: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select(blobs, [1, 2], "full", **FAST)


def test_select_fits_rows_with_missing_values(blobs: np.ndarray) -> None:
    holes = blobs.copy()
    rng = np.random.default_rng(1)
    holes[rng.random(holes.shape) < 0.1] = np.nan
    holes[np.isnan(holes).all(axis=1), 0] = 0.0  # keep a value in every row
    with pytest.raises(ValueError, match="NaN"):
        select(holes, [1, 2], ["full"], n_jobs=1)
    result = select(
        holes,
        [1, 2],
        ["full"],
        n_init=5,
        init_params="kmeans",
        missing="em",
        random_state=0,
        n_jobs=1,
        polish_tol=None,
    )
    alone = GaussianMixture(
        2, missing="em", n_init=5, tol=1e-5, convergence="relative", max_iter=1000,
        reg_covar=0.0, random_state=0,
    )  # fmt: skip
    alone.fit(holes)
    cell = result.models[(2, "full")]
    assert cell is not None and cell.missing == "em" and cell.n_missing_ == alone.n_missing_
    np.testing.assert_allclose(cell.means_, alone.means_, rtol=1e-8)


# ------------------------------------------------------------------ the grid's strategy


def _alone(X: np.ndarray, k: int, name: str) -> GaussianMixture:
    """One cell as select fits it first: mclust's start, stopping rule and no reg_covar (a
    zero variance singular, as in select)."""
    model = GaussianMixture(
        k,
        covariance_type=name,
        init_params="hc",
        tol=1e-5,
        convergence="relative",
        max_iter=1000,
        reg_covar=0.0,
        random_state=0,
    )
    with zero_variance_is_singular():
        return model.fit(X)


def test_one_component_models_are_three_fits_each_with_its_own_count(blobs: np.ndarray) -> None:
    result = select(blobs, [1], "all", polish_tol=None, **FAST)
    assert len(result.records) == 14 and result.n_distinct == 3  # spherical, diagonal, full
    for record in result.records:
        alone = _alone(blobs, 1, record.covariance_type)
        assert record.log_likelihood == pytest.approx(alone.log_likelihood_, rel=1e-9)
        assert record.n_parameters == alone._n_parameters()  # the registry's, mclust's count
        assert record.bic == pytest.approx(alone.bic(blobs), rel=1e-9)
        model = result.models[(1, record.covariance_type)]
        assert model is not None and model.covariance_type == record.covariance_type
        assert model.covariances_.shape == alone.covariances_.shape  # EEE: one shared matrix
        np.testing.assert_allclose(model.covariances_, alone.covariances_, rtol=1e-9)
        np.testing.assert_allclose(model.score_samples(blobs), alone.score_samples(blobs))


def test_one_feature_models_are_e_or_v() -> None:
    X = mixture_data(2, n=200, n_features=1, n_components=2)
    types = ("spherical", "diag", "tied", "full", "EEI", "VEV", "E", "V")
    result = select(X, [1, 2, 3], types, polish_tol=None, **FAST)
    assert result.n_distinct == 1 + 2 * 2  # K=1: one variance; then E (equal) and V
    for record in result.records:
        alone = _alone(X, record.n_components, record.covariance_type)
        assert record.log_likelihood == pytest.approx(alone.log_likelihood_, rel=1e-7)
        assert record.n_parameters == alone._n_parameters()
        model = result.models[(record.n_components, record.covariance_type)]
        assert model is not None and model.covariances_.shape == alone.covariances_.shape
        np.testing.assert_allclose(model.predict_proba(X), alone.predict_proba(X), atol=1e-6)


def test_a_few_refined_cells_give_the_full_search_choice(blobs: np.ndarray) -> None:
    grid = dict(n_components=range(1, 5), covariance_types=("VII", "EEI", "EEE", "VVV"))
    kwargs = {"n_init": 3, "random_state": 0, "n_jobs": 1}
    first_only = select(blobs, refine=0, **grid, **kwargs)
    few = select(blobs, refine=3, **grid, **kwargs)
    every = select(blobs, refine=None, **grid, **kwargs)
    assert first_only.refined == () and len(every.refined) == 12  # K >= 2
    # the three best of the hierarchical start's grid
    top = [(r.n_components, r.covariance_type) for r in first_only.ranking() if r.n_components > 1]
    assert set(few.refined) == set(top[:3])
    assert few.best_record.model_name == every.best_record.model_name
    assert few.best_record.bic == pytest.approx(every.best_record.bic, rel=1e-9)
    for cell in few.refined:  # the better of the starts is kept
        assert few.record(*cell).log_likelihood >= first_only.record(*cell).log_likelihood - 1e-9


def test_fits_near_the_best_run_on_to_polish_tol(blobs: np.ndarray) -> None:
    grid = dict(n_components=range(1, 4), covariance_types=("VII", "VVV"))
    plain = select(blobs, polish_tol=None, **grid, **FAST)
    polished = select(blobs, **grid, **FAST)
    best = plain.best_record.bic
    near = {(r.n_components, r.covariance_type) for r in plain.ranking() if r.bic <= best + 10}
    assert set(polished.polished) == near and plain.polished == ()
    for record in plain.records:
        cell = (record.n_components, record.covariance_type)
        after = polished.record(*cell)
        if cell in near:  # EM climbs: never lower
            assert after.log_likelihood >= record.log_likelihood - 1e-9
            assert after.n_iter >= record.n_iter
        else:
            assert after.log_likelihood == record.log_likelihood


# above hc.HC_MAX_ROWS rows, with two features or more: the contest (selection.py, "The grid", 5)
LARGE_GRID = {"n_components": range(1, 5), "covariance_types": ("VII", "EEE", "VVV")}


@pytest.fixture(scope="module")
def large() -> np.ndarray:
    # overlapping components, so that starts can end in different optima
    return mixture_data(3, n=HC_MAX_ROWS + 400, n_features=2, n_components=4, spread=2.0)


def test_the_contest_runs_above_mclusts_subset_size_with_two_features_or_more() -> None:
    big = HC_MAX_ROWS + 1
    starts = [("kmeans", CONTEST_STARTS), ("kmeans_standardised", CONTEST_STARTS)]
    assert _contest_starts(MCLUST_STARTS, 2, 3, big, 2) == starts
    assert _contest_starts(MCLUST_STARTS, 2, 3, HC_MAX_ROWS, 2) == []  # mclust's tree: all rows
    assert _contest_starts(MCLUST_STARTS, 2, 3, big, 1) == []  # one feature: mclust grows none
    assert _contest_starts("kmeans", 2, 3, big, 2) == []  # the user's own starts, as asked
    assert _contest_starts(MCLUST_STARTS, 1, 3, big, 2) == []  # n_init=1: the first start alone
    assert _contest_starts(MCLUST_STARTS, 2, 1, big, 2) == []  # one component: one start


def test_the_contest_gives_the_best_cells_more_starts_compared_at_polish_tol(
    large: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs = {"random_state": 0, "n_jobs": 1}
    result = select(large, **LARGE_GRID, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(selection, "CONTENDERS", 0)
        before = select(large, **LARGE_GRID, **kwargs)  # the grid as the contest found it
    assert before.contested == () and len(result.contested) == CONTENDERS
    # every refined cell ran on to polish_tol, near the best or not
    assert len(before.refined) == 8 and set(before.refined) <= set(before.polished)
    ranked = [(r.n_components, r.covariance_type) for r in before.ranking() if r.n_components > 1]
    top = ranked[:CONTENDERS]
    assert set(result.contested) == set(top)
    assert set(result.contested) <= set(result.polished)
    options = {"tol": 1e-7, "convergence": "relative", "max_iter": 1000, "reg_covar": 0.0}
    for cell in result.contested:  # the best of the cell's fit and each start, run to 1e-7
        record = result.record(*cell)
        assert record.log_likelihood >= before.record(*cell).log_likelihood
        starts: list[dict] = [
            {"init_params": method, "n_init": CONTEST_STARTS, "random_state": 0}
            for method in ("kmeans", "kmeans_standardised")
        ]
        # and from the other models' fits of its K, as the contest found them
        others = [before.models[(cell[0], t)] for t in before.covariance_types]
        given = [
            _start_from(m, cell[1])
            for m in others
            if m is not None and m.covariance_type != cell[1]
        ]
        assert len(given) == 2 and None not in given
        for start in [*starts, *given]:
            alone = GaussianMixture(cell[0], covariance_type=cell[1], **options, **start)
            alone.fit(large)
            rounding = 1e-9 * abs(alone.log_likelihood_)
            assert record.log_likelihood >= alone.log_likelihood_ - rounding
    # here one start of the contest lifts a cell well above the fit it had (EEE,4: by 33)
    lifts = [result.record(*c).log_likelihood - before.record(*c).log_likelihood for c in top]
    assert max(lifts) > 1.0
    for record in result.records:  # the rest as they were
        if (record.n_components, record.covariance_type) not in result.contested:
            assert record == before.record(record.n_components, record.covariance_type)


def test_a_polish_that_collapses_keeps_the_fit_it_started_from(
    blobs: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A polish whose EM meets a singular covariance (reg_covar=0) keeps the first fit's record,
    its entropy computed from the grid's rows in memory (it used to read the rows' shape off
    the ``_Rows`` holder and fail)."""
    from gaussmix import selection
    from gaussmix.data.sources import ArraySource
    from gaussmix.em import DegenerateCovarianceError
    from gaussmix.selection import _data_variance, _polish_cell, _Rows

    model = GaussianMixture(3, covariance_type="VEV", tol=1e-3, random_state=0).fit(blobs)
    original = selection._fit

    def collapsing(candidate: GaussianMixture, X: object) -> float | None:
        if candidate.warm_start:
            raise DegenerateCovarianceError("the covariance of component 0 is singular")
        return original(candidate, X)

    monkeypatch.setattr(selection, "_fit", collapsing)
    rows = _Rows(ArraySource(blobs), 0, None)
    _, record, kept = _polish_cell(rows, (3, "VEV"), model, 1e-9, _data_variance(blobs), 1e-8)
    assert kept is model and record.log_likelihood == model.log_likelihood_
    assert record.entropy == pytest.approx(classification_entropy(model, blobs), rel=1e-12)


def test_a_polish_leaves_the_fit_it_starts_from_as_it_was(blobs: np.ndarray) -> None:
    import copy

    from gaussmix.data.sources import ArraySource
    from gaussmix.selection import _data_variance, _polish_cell, _Rows

    model = GaussianMixture(3, covariance_type="VEV", tol=1e-3, random_state=0).fit(blobs)
    before = copy.deepcopy(model.__dict__)
    rows = _Rows(ArraySource(blobs), 0, None)
    _, record, polished = _polish_cell(
        rows, (3, "VEV"), model, 1e-9, _data_variance(blobs), 1e-8
    )  # fmt: skip
    assert polished is not model and polished.n_iter_ > model.n_iter_
    assert record.log_likelihood >= model.log_likelihood_ - 1e-9
    assert before.keys() == model.__dict__.keys()
    for name, value in before.items():  # a shallow copy was polished: nothing of it shared
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(model.__dict__[name], value)
        else:
            assert model.__dict__[name] == value, name


def test_small_grids_run_in_this_process() -> None:
    from gaussmix.selection import PROCESSES_MIN_SIZE, _jobs

    assert _jobs(None, 272, 2) == 1
    assert _jobs(None, PROCESSES_MIN_SIZE, 1) == -1
    assert _jobs(2, 272, 2) == 2 and _jobs(1, 10**6, 5) == 1


def test_a_collapsed_start_never_replaces_a_fit(small: SelectionResult) -> None:
    from dataclasses import replace

    from gaussmix.selection import _preferred

    fit = small.records[-1]
    collapse = replace(fit, log_likelihood=fit.log_likelihood + 50, degenerate=True)
    better = replace(fit, log_likelihood=fit.log_likelihood + 1)
    failed = replace(fit, log_likelihood=float("nan"), degenerate=True, error="singular")
    assert _preferred(fit) > _preferred(collapse) > _preferred(failed)
    assert _preferred(better) > _preferred(fit)
    assert _preferred(collapse) > _preferred(replace(collapse, log_likelihood=0.0 - 1e9))


# ------------------------------------------------------------------ the grid's fits, validated once


def _public_fit(X: object, k: int, name: str, **kwargs: object) -> GaussianMixture:
    """One cell by the public ``fit`` (its own checks)."""
    options = {"init_params": "hc", "tol": 1e-5, "convergence": "relative", "max_iter": 1000}
    options |= {"reg_covar": 0.0}  # select's default, with its arithmetic (lean.py)
    model = GaussianMixture(
        k, covariance_type=name, random_state=0, n_threads=1, **(options | kwargs)
    )
    with zero_variance_is_singular():
        return model.fit(X)


def test_cells_are_the_public_fit_to_the_bit(blobs: np.ndarray) -> None:
    from gaussmix.selection import _distinct_fit

    # select's fits skip the checks fit repeats (rows, parameters, the random state of the
    # hierarchical start), take their entropy from the final E-step: none of it may change a
    # number
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(blobs, columns=["height", "width"])
    types = ("EII", "VII", "EEI", "VVI", "EEE", "VEV", "EVE", "VVV")
    # the same numbers in rows (C order) first: nothing of theirs (the hierarchical tree, kept
    # C calls) may serve the DataFrame's columns (Fortran order) but what gives the same bits
    select(blobs, range(1, 4), types, polish_tol=None, refine=0, **FAST)
    result = select(frame, range(1, 4), types, polish_tol=None, refine=0, **FAST)
    for record in result.records:
        k = record.n_components
        fitted_as = _distinct_fit(record.covariance_type, k, 2)  # K = 1: VII, VVI or VVV
        alone = _public_fit(frame, k, fitted_as)
        model = result.models[(k, fitted_as)]
        assert model is not None
        assert record.log_likelihood == alone.log_likelihood_
        assert record.n_iter == alone.n_iter_ and record.converged == alone.converged_
        for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            np.testing.assert_array_equal(getattr(model, attr), getattr(alone, attr))
        # the final E-step's entropy is the lean C pass's (lean.final_pass); this function's
        # the general pass's: the same responsibilities to rounding
        assert record.entropy == pytest.approx(classification_entropy(alone, frame), rel=1e-12)
        assert list(model.feature_names_in_) == ["height", "width"]
        assert model.n_features_in_ == 2 and model.n_missing_ == 0


def test_cells_with_missing_values_are_the_public_fit(blobs: np.ndarray) -> None:
    from gaussmix.selection import _distinct_fit

    holes = blobs.copy()
    holes[np.random.default_rng(2).random(holes.shape) < 0.08] = np.nan
    holes[np.isnan(holes).all(axis=1), 0] = 0.0
    grid = {"n_components": [1, 2, 3], "covariance_types": ["VVV", "VEI"]}
    result = select(holes, **grid, missing="em", polish_tol=None, refine=0, **FAST)
    for record in result.records:
        k = record.n_components
        fitted_as = _distinct_fit(record.covariance_type, k, 2)  # K = 1: VVI or VVV
        alone = _public_fit(holes, k, fitted_as, missing="em")
        model = result.models[(k, record.covariance_type)]
        assert model is not None and model.n_missing_ == alone.n_missing_ > 0
        assert record.log_likelihood == alone.log_likelihood_
        np.testing.assert_array_equal(model.means_, alone.means_)
        # the same responsibilities, summed in another order (rows with NaN gathered)
        assert record.entropy == pytest.approx(classification_entropy(alone, holes), rel=1e-12)


def test_the_parameters_are_checked_once_per_kind_of_start(
    blobs: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[tuple[str, int]] = []
    original = GaussianMixture._validate_params

    def counting(self: GaussianMixture) -> None:
        checked.append((self.init_params, self.n_init))
        original(self)

    monkeypatch.setattr(GaussianMixture, "_validate_params", counting)
    result = select(blobs, range(1, 4), ("VII", "VVV"), n_init=2, random_state=0, n_jobs=1)
    assert result.refined  # the k-means starts ran too, and the polish
    assert sorted(checked) == [("hc", 1), ("kmeans_standardised", 1)]
    monkeypatch.undo()
    with pytest.raises(ValueError, match="'tol' parameter"):  # scikit-learn's message, as fit's
        select(blobs, [1, 2], "VVV", tol=-1.0, n_jobs=1)


# ------------------------------------------------------------------ against mclust, near singular

MCLUST_SELECT = Path(__file__).parent / "data" / "mclust_select" / "fixture.json"


@pytest.mark.parametrize("name", ["mtcars", "pressure", "ships"])
def test_near_singular_best_fits_of_mclust_are_chosen(name: str) -> None:
    """mclust's choice (tests/data/mclust_select/make_fixture.py) has a smallest variance some
    1e-10 of the data's: without reg_covar and with the threshold near rounding, select's
    defaults reach it (1e-8 refused it: 133 and 16 below mclust's)."""
    recorded = json.loads(MCLUST_SELECT.read_text())["sets"][name]
    X = np.array(recorded["rows"], dtype=np.float64)
    result = select(X, random_state=0)
    best = result.best_record
    assert (best.mclust, best.n_components) == (recorded["model"], recorded["G"])
    assert best.bic_mclust >= recorded["bic"] - 1e-6 * abs(recorded["bic"])
    if name != "ships":
        assert 0 < best.min_relative_variance < 1e-8


def test_a_numerically_singular_em_step_fails_the_fit() -> None:
    """A component on rows whose second column varies by 1e-12 only: its variance there is
    1e-24, positive, so EM alone runs on; inside ``singular_fails`` (select's fits) the M-step
    fails, as mclust's returns NA. And ships' VVE,2 (period takes two values) fails in select
    rather than running to max_iter (it took 130 s once)."""
    from gaussmix.em.mstep import singular_fails

    rng = np.random.default_rng(0)
    tight = np.column_stack([rng.normal(4.0, 1.0, 30), 5.0 + 1e-12 * rng.normal(size=30)])
    X = np.vstack([rng.normal(size=(200, 2)), tight])
    options = {"init_params": "hc", "reg_covar": 0.0, "convergence": "relative", "max_iter": 30}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        alone = GaussianMixture(2, covariance_type="diag", **options).fit(X)
    assert alone.covariances_.min() < 1e-16 * X.var(axis=0).min()
    with singular_fails(X.var(axis=0)), pytest.raises(ValueError, match="numerically singular"):
        GaussianMixture(2, covariance_type="diag", **options).fit(X)
    ships = json.loads(MCLUST_SELECT.read_text())["sets"]["ships"]["rows"]
    record = select(np.array(ships, dtype=float), [1, 2], "VVE", random_state=0).record(2, "VVE")
    assert record.error is not None


def test_the_choice_does_not_depend_on_the_units() -> None:
    """Without reg_covar nothing in select has a unit: rows scaled by c give the same choice,
    and BIC moves by -2 n D log c (a constant reg_covar of 1e-6 is most of a variance of 1e-6:
    as on wdbc, whose last column's variance is 5e-5)."""
    X = mixture_data(4, n=240, n_features=2, n_components=3)
    grid = {"n_components": [1, 2, 3, 4], "covariance_types": ["VII", "VVI", "EEE", "VVV"]}
    ref = select(X, random_state=0, n_jobs=1, **grid)
    n, d = X.shape
    for c in (1e-3, 1e3):
        scaled = select(X * c, random_state=0, n_jobs=1, **grid)
        shift = 2 * n * d * math.log(c)
        assert scaled.best_record.model_name == ref.best_record.model_name
        assert scaled.best_record.bic == pytest.approx(ref.best_record.bic + shift, abs=0.05)
        for a, b in zip(ref.records, scaled.records, strict=True):
            # to where EM stops: mclust's relative rule reads |L|, which moves with the units
            # (0.3 at most here; with reg_covar=1e-6 at c = 1e-3: 39 in the median, 187 at most,
            # and the choice VVV,2 instead of EEE,4)
            assert b.bic == pytest.approx(a.bic + shift, abs=1.0)


def test_one_feature_s_further_start_is_mclust_s_quantile_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gaussmix.em import init

    X = mixture_data(5, n=150, n_features=1, n_components=3)
    starts: list[tuple[str, int]] = []
    original = GaussianMixture._fit_validated

    def recording(self: GaussianMixture, *args: object, **kwargs: object) -> float:
        if not self.warm_start:  # the polish runs on from a fit: no start
            starts.append((self.init_params, self.n_components))
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    def no_kmeans(*args: object) -> None:
        raise AssertionError("k-means ran on one feature")

    monkeypatch.setattr(GaussianMixture, "_fit_validated", recording)
    monkeypatch.setitem(init.INIT_METHODS, "kmeans_standardised", no_kmeans)
    result = select(X, range(1, 6), "all", random_state=0, n_jobs=1, polish_tol=None)
    refined = {(k, t) for k, t in result.refined}
    assert len(refined) == 8  # the eight best cells with K >= 2 (of the grid's eight E and V)
    quantile = [k for method, k in starts if method == "quantile"]
    assert sorted(quantile) == sorted(k for k, _ in refined) and min(quantile) >= 2
    # each refined cell kept the better of its two starts (no polish: as they stopped), never
    # below its hierarchical one
    monkeypatch.undo()
    hc_only = select(X, range(1, 6), "all", random_state=0, n_jobs=1, refine=0, polish_tol=None)
    for cell in refined:
        assert result.record(*cell).log_likelihood >= hc_only.record(*cell).log_likelihood
