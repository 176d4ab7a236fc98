"""``GaussianMixtureImputer``: missing entries filled from a Gaussian mixture fitted with them.

The imputer fits ``GaussianMixture(missing="em")`` (exact EM with the holes integrated out, see
``gaussmix.em.missing``) and fills each hole with what the fitted mixture says about it given
the row's observed entries: the conditional mean sum_k p(k | x_o) E[x_m | x_o, k], or a draw
from the conditional distribution (multiple imputation). It holds no arithmetic of its own: the
conditional quantities come from the engine (``missing.conditional``).
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from gaussmix.data.sources import ArraySource
from gaussmix.em.missing import conditional
from gaussmix.mixture import GaussianMixture

Array = NDArray[np.float64]

__all__ = ["GaussianMixtureImputer"]


class GaussianMixtureImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Fill missing values (NaN) from a Gaussian mixture fitted to the incomplete rows.

    ``fit`` fits ``GaussianMixture(missing="em")`` to X with its NaN (exact EM for the
    observed-data likelihood; no row is dropped and nothing is filled in beforehand);
    ``transform`` replaces each NaN by its conditional mean under the fitted mixture given the
    row's observed entries,

        E[x_m | x_o] = sum_k p(k | x_o) (mu_k,m + Sigma_k,mo Sigma_k,oo^{-1} (x_o - mu_k,o)),

    which, unlike a column mean, uses what the row's other values say about the hole and which
    cluster the row belongs to. Observed entries are returned unchanged; a row with nothing
    observed gets the mixture's mean.

    Parameters
    ----------
    n_components : int, default=1
        Components K of the mixture (1: a single Gaussian, i.e. linear regression of each
        missing value on the observed ones).
    covariance_type : {'full', 'tied', 'diag', 'spherical'} or mclust's names, default='full'
        Covariance structure; 'diag' and 'spherical' make the coordinates independent within a
        component, so a hole is filled from the component means alone.
    tol, reg_covar, max_iter, n_init, init_params :
        As for ``gaussmix.GaussianMixture``.
    random_state : int, RandomState instance or None, default=None
        Seeds the fit (and the draws of ``transform(sample=True)`` when it gives none).

    Attributes
    ----------
    mixture_ : the fitted ``GaussianMixture``.
    n_iter_ : int, EM iterations of the fit.
    n_features_in_ : int.  feature_names_in_ : (D,) when X had string column names.
    """

    # the mixture's own constraints for the parameters passed on to it (one place)
    _parameter_constraints: dict[str, list[Any]] = {
        name: GaussianMixture._parameter_constraints[name]
        for name in (
            "n_components",
            "covariance_type",
            "tol",
            "reg_covar",
            "n_init",
            "init_params",
            "random_state",
        )
    } | {"max_iter": [Interval(Integral, 1, None, closed="left")]}

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def fit(self, X: ArrayLike, y: object = None) -> GaussianMixtureImputer:
        """Fit the mixture to X (n_samples, n_features), NaN marking missing entries.

        Returns
        -------
        self
        """
        self._validate_params()
        self.mixture_ = GaussianMixture(
            self.n_components,
            covariance_type=self.covariance_type,
            tol=self.tol,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            n_init=self.n_init,
            init_params=self.init_params,
            random_state=self.random_state,
            missing="em",
        ).fit(X)
        self.n_features_in_ = self.mixture_.n_features_in_
        self.n_iter_ = self.mixture_.n_iter_
        if hasattr(self.mixture_, "feature_names_in_"):
            self.feature_names_in_ = self.mixture_.feature_names_in_
        return self

    def transform(
        self,
        X: ArrayLike,
        *,
        sample: bool = False,
        random_state: int | np.random.RandomState | None = None,
        return_std: bool = False,
    ) -> Array | tuple[Array, Array]:
        """X with its missing entries filled.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), NaN where missing.
        sample : bool, default=False
            Draw each row's missing entries from their conditional distribution under the
            mixture (a component k ~ p(k | x_o), then x_m ~ N(E[x_m | x_o, k],
            Cov[x_m | x_o, k])) instead of filling the conditional mean: calling it with
            different ``random_state`` gives multiple imputations.
        random_state : int, RandomState instance or None, default=None
            The draws' seed (``sample=True``); None uses the estimator's ``random_state``.
        return_std : bool, default=False
            Also return the conditional standard deviations (n_samples, n_features) of the
            missing entries under the mixture, 0 on observed entries. They are those of the
            mixture, not of one component: the within-component conditional variance plus the
            spread of the components' conditional means (law of total variance), so a hole
            whose row could belong to two clusters gets a wide interval.

        Returns
        -------
        X_filled : (n_samples, n_features), float32 for float32 rows, else float64.
        std : same shape and dtype (with ``return_std``).
        """
        check_is_fitted(self)
        model = self.mixture_
        source = model._source(X, reset=False)  # validated rows (NaN allowed, no infinities)
        rows = source.take(np.arange(source.n_samples))
        rng = None
        if sample:
            rng = check_random_state(self.random_state if random_state is None else random_state)
        result = conditional(rows, model._params(), rng)
        # float32 rows give float32 values, as scikit-learn's imputers do (computed in float64)
        dtype = source.X.dtype if isinstance(source, ArraySource) else np.dtype(np.float64)
        filled = result.mean.astype(dtype, copy=False)
        if return_std:
            return filled, result.std.astype(dtype, copy=False)
        return filled
