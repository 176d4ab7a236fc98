"""Writes fixture.json beside this file: R's mclust fitted with its conjugate prior.

Run from the repository root with R and mclust installed (Debian: apt-get install
r-cran-mclust):

    python tests/data/mclust_prior/make_fixture.py

For every model mclust offers with a prior (E, V on one column; EII ... VVV but EVE, VEE, VVE,
EVV on two), mclust's ``me()`` runs EM from a fixed start, ``z`` the one-hot rows of a rule on
the data (below, and in tests/em/test_prior.py), with ``prior = priorControl()`` (every
default of ``defaultPrior``) and a relative tolerance of 1e-14. The data are Old Faithful
(R's ``faithful``; gaussmix ships the same 272 rows) and, for E and V, its ``eruptions``
column. The JSON records mclust's version, R's, the date, the start rules and per fit the
log-likelihood, BIC (mclust's sign), the number of parameters, weights, means and covariances.
tests/em/test_prior.py reads it; the test does not need R.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

R_PROGRAM = r"""
suppressMessages(library(mclust))
library(jsonlite)
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(faithful)
control <- emControl(tol = c(1e-14, sqrt(.Machine$double.eps)))
starts <- list(
  "2" = ifelse(X[, "eruptions"] > 3, 1, 2),
  "3" = as.integer(cut(X[, "waiting"], c(-Inf, 60, 75, Inf)))
)
fit <- function(data, model, G) {
  z <- unmap(starts[[as.character(G)]])
  out <- me(data, model, z, prior = priorControl(), control = control)
  d <- ncol(as.matrix(data))
  sigma <- if (d == 1) {
    array(rep_len(out$parameters$variance$sigmasq, G), c(1, 1, G))
  } else out$parameters$variance$sigma
  list(model = model, G = G, loglik = out$loglik,
       bic = bic(model, out$loglik, nrow(as.matrix(data)), d, G),
       n_parameters = nMclustParams(model, d, G),
       iterations = attr(out, "info")[["iterations"]],
       pro = as.numeric(out$parameters$pro),
       mean = unname(t(matrix(out$parameters$mean, nrow = d))),
       sigma = lapply(seq_len(G), function(k) unname(matrix(sigma[, , k], d, d))))
}
fits <- list()
for (G in c(2, 3)) {
  for (model in c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")) {
    fits[[length(fits) + 1]] <- fit(X, model, G)
  }
  for (model in c("E", "V")) {
    fits[[length(fits) + 1]] <- fit(X[, "eruptions", drop = FALSE], model, G)
  }
}
write_json(list(mclust = as.character(packageVersion("mclust")), R = R.version.string,
                fits = fits), args[1], digits = NA, auto_unbox = TRUE)
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "fixture.R"
        script.write_text(R_PROGRAM)
        raw = Path(folder) / "raw.json"
        subprocess.run(["Rscript", str(script), str(raw)], check=True)
        result = json.loads(raw.read_text())
    fixture = {
        "provenance": {
            "written_by": "tests/data/mclust_prior/make_fixture.py",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "mclust": result["mclust"],
            "R": result["R"],
            "data": "R's faithful (272 x 2); E and V on its eruptions column",
            "call": "me(data, model, unmap(start), prior = priorControl(), "
            "control = emControl(tol = c(1e-14, sqrt(.Machine$double.eps))))",
            "starts": {
                "2": "component 1 where eruptions > 3, else 2",
                "3": "waiting cut at 60 and 75 (components 1, 2, 3)",
            },
        },
        "fits": result["fits"],
    }
    (HERE / "fixture.json").write_text(json.dumps(fixture, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
