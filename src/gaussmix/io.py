"""Saving and loading fitted models without pickle.

Format (version 1): a NumPy ``.npz`` archive read with ``allow_pickle=False``, holding the arrays
``weights``, ``means``, ``covariances``, ``precisions_cholesky`` (float64, or float32 for a fit of
float32 rows), ``lower_bounds``, the constructor's ``weights_init``, ``means_init`` and
``precisions_init`` where given, and a string ``metadata``: JSON with ``format``
("gaussmix-model"), ``format_version`` (1), the other constructor parameters (``dtype`` by name,
``random_state`` when it is an integer; ``prior`` as None, "mclust" or its fields; older files
without ``dtype`` or ``prior`` load with the defaults),
the fit summary (converged, n_iter, lower_bound, n_reinitialized), the
shape of the data it was fitted on and its column names. Writes go to a temporary file in the
target's folder that is renamed over the target, so an interrupted save never leaves a
half-written model under the target's name.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gaussmix.atomic import atomic_write
from gaussmix.errors import GaussmixError

if TYPE_CHECKING:
    from gaussmix.mixture import GaussianMixture

FORMAT = "gaussmix-model"
FORMAT_VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"  # an .npz archive is a zip file
_ARRAYS = ("weights", "means", "covariances", "precisions_cholesky", "lower_bounds")
_PARAMS = (
    "n_components",
    "covariance_type",
    "tol",
    "reg_covar",
    "max_iter",
    "n_init",
    "init_params",
    "warm_start",
    "verbose",
    "verbose_interval",
    "chunk_size",
    "n_threads",
    "init_sample_size",
    "missing",
    "learning_decay",  # older files hold none: the default
    "convergence",  # older files hold none: the default
)
# the array-valued constructor parameters, stored as optional arrays of the archive
_INIT_ARRAYS = ("weights_init", "means_init", "precisions_init")


def _json_random_state(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, np.integer)) else None


def save_model(
    model: GaussianMixture,
    path: str | Path,
    *,
    columns: list[str] | None = None,
    scaling: dict[str, list[float]] | None = None,
) -> Path:
    """Write a fitted model atomically; returns the path written.

    ``columns`` names the data's columns; ``scaling`` ({"center": [...], "scale": [...]}) records
    a standardisation applied before fitting, which ``gaussmix predict`` applies again.
    """
    from sklearn.utils.validation import check_is_fitted

    from gaussmix.em.device import on_host  # a model fitted on a device is saved from the host
    from gaussmix.em.prior import prior_to_json

    check_is_fitted(model)
    target = Path(path)
    names = getattr(model, "feature_names_in_", None)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": {name: getattr(model, name) for name in _PARAMS}
        | {
            "random_state": _json_random_state(model.random_state),
            "dtype": np.dtype(model.dtype).name,
            "prior": prior_to_json(model.prior),
        },
        "fit": {
            "converged": bool(model.converged_),
            "n_iter": int(model.n_iter_),
            "lower_bound": float(model.lower_bound_),
            "log_likelihood": float(model.log_likelihood_),
            "reinitialized": [[int(t), int(k)] for t, k in getattr(model, "reinitialized_", [])],
            "n_samples": int(getattr(model, "n_samples_fit_", 0)),
            "n_features": int(model.n_features_in_),
            "feature_names_in": None if names is None else [str(c) for c in names],
            "scaling": scaling,
            "columns": columns
            if columns is not None
            else (None if names is None else [str(c) for c in names]),
        },
    }
    arrays = {
        "weights": on_host(model.weights_),
        "means": on_host(model.means_),
        "covariances": on_host(model.covariances_),
        "precisions_cholesky": on_host(model.precisions_cholesky_),
        "lower_bounds": np.asarray(model.lower_bounds_, dtype=np.float64),
    }
    for name in _INIT_ARRAYS:
        if getattr(model, name) is not None:
            arrays[name] = np.asarray(getattr(model, name), dtype=np.float64)
    payload: dict[str, Any] = {"metadata": np.array(json.dumps(meta)), **arrays}
    with atomic_write(target) as f:
        np.savez(f, **payload)
    return target


def read_metadata(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a model file; GaussmixError if it is not one."""
    path = Path(path)
    if path.is_dir():
        raise GaussmixError(f"{path} is a folder, not a model file (.npz from fit --out)")
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != ZIP_MAGIC:
        printable = magic and all(32 <= b < 127 or b in (9, 10, 13) for b in magic)
        what = "a text file" if printable else "another kind of file"
        raise GaussmixError(
            f"{path} is not a gaussmix model but {what}; a model is the .npz file that "
            "gaussmix fit --out or select --out writes"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError):
        raise GaussmixError(
            f"{path} is not a readable gaussmix model (truncated or damaged); write it again "
            "with gaussmix fit --out"
        ) from None
    if "metadata" not in contents:
        raise GaussmixError(f"{path} is an .npz file but not a gaussmix model (no metadata)")
    try:
        meta = json.loads(str(contents.pop("metadata")))
    except json.JSONDecodeError:
        raise GaussmixError(f"{path} has unreadable gaussmix metadata") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GaussmixError(f"{path} is not a gaussmix model file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise GaussmixError(
            f"{path} has model format version {meta.get('format_version')}; this gaussmix "
            f"reads version {FORMAT_VERSION}: upgrade gaussmix"
        )
    missing = [name for name in _ARRAYS if name not in contents]
    if missing:
        raise GaussmixError(f"{path} is an incomplete gaussmix model (missing {missing})")
    return meta, contents


def load_model(path: str | Path) -> GaussianMixture:
    """Read a model written by ``save_model``."""
    from gaussmix.em import get_covariance
    from gaussmix.em.prior import prior_from_json
    from gaussmix.mixture import GaussianMixture

    meta, arrays = read_metadata(path)
    params = dict(meta["params"])
    fit = meta["fit"]
    # files written before dtype was saved hold none: the default
    params["dtype"] = np.dtype(params.get("dtype", "float64")).type
    params["prior"] = prior_from_json(params.get("prior"))  # older files: None
    inits: dict[str, Any] = {name: arrays[name] for name in _INIT_ARRAYS if name in arrays}
    model = GaussianMixture(**params, **inits)
    cov = get_covariance(model.covariance_type)
    K, D = int(params["n_components"]), int(fit["n_features"])
    shape = cov.shape(K, D)
    if arrays["means"].shape != (K, D) or arrays["covariances"].shape != shape:
        raise GaussmixError(f"{path} is a corrupt gaussmix model (array shapes do not match)")
    model.weights_ = arrays["weights"]
    model.means_ = arrays["means"]
    model.covariances_ = arrays["covariances"]
    model.precisions_cholesky_ = arrays["precisions_cholesky"]
    model.precisions_ = cov.precisions(model.precisions_cholesky_)
    model.lower_bounds_ = [float(v) for v in arrays["lower_bounds"]]
    model.converged_ = bool(fit["converged"])
    model.n_iter_ = int(fit["n_iter"])
    model.lower_bound_ = float(fit["lower_bound"])
    model.log_likelihood_ = float(fit["log_likelihood"])
    model.reinitialized_ = [(int(t), int(k)) for t, k in fit["reinitialized"]]
    model.n_reinitialized_ = len(model.reinitialized_)
    model.n_samples_fit_ = int(fit["n_samples"])
    model.n_features_in_ = D
    if fit.get("feature_names_in") is not None:
        model.feature_names_in_ = np.asarray(fit["feature_names_in"], dtype=object)
    model.columns_ = fit.get("columns")
    return model
