"""Writes fixture.json beside this file: R's ``Mclust`` with its defaults on small data sets
whose best fits are near singular, and one with a column of two values.

Run from the repository root with R and mclust installed (Debian: apt-get install
r-cran-mclust):

    python tests/data/mclust_select/make_fixture.py

The sets are R's ``mtcars`` (columns mpg, disp, hp, drat, wt, qsec: 32 x 6; mclust chooses
VEV,6, components of three to nine cars whose smallest variance is 1e-10 of the data's),
``pressure`` (19 x 2; VVV,5) and MASS's ``ships`` (period, a column of two values, service and
incidents: 40 x 3; VEV,2). ``Mclust(X)`` fits G = 1..9 and all fourteen models from its
hierarchical start without any regularisation. The JSON records mclust's version, R's, the date
and per set the rows, mclust's choice and its BIC (mclust's sign). tests/test_selection.py
reads it; the test does not need R.
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
sets <- list(
  mtcars = as.matrix(mtcars[, c("mpg", "disp", "hp", "drat", "wt", "qsec")]),
  pressure = as.matrix(pressure),
  ships = as.matrix(MASS::ships[, 3:5])
)
out <- list()
for (name in names(sets)) {
  X <- sets[[name]]
  m <- Mclust(X, verbose = FALSE)
  out[[name]] <- list(rows = unname(X), model = m$modelName, G = m$G, bic = m$bic,
                      loglik = m$loglik)
}
out$provenance <- list(mclust = as.character(packageVersion("mclust")), R = R.version.string)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), args[1])
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "fixture.R"
        program.write_text(R_PROGRAM)
        raw = Path(tmp) / "out.json"
        subprocess.run(["Rscript", str(program), str(raw)], check=True)
        data = json.loads(raw.read_text())
    r_info = data.pop("provenance")
    fixture = {
        "provenance": {
            "written_by": "tests/data/mclust_select/make_fixture.py",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "mclust": r_info["mclust"],
            "R": r_info["R"],
            "call": "Mclust(X) (G = 1:9, all fourteen models, its defaults)",
        },
        "sets": data,
    }
    (HERE / "fixture.json").write_text(json.dumps(fixture, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
