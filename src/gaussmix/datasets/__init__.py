"""Bundled data sets: Old Faithful (shipped here), and scikit-learn's bundled copies of the
wine and digits data (read from the scikit-learn installation, no download)."""

from __future__ import annotations

from importlib.resources import as_file, files

import numpy as np

from gaussmix.data.files import Table, read_table


def load_faithful() -> Table:
    """Old Faithful geyser eruptions: 272 rows, columns ``eruptions`` (minutes) and ``waiting``
    (minutes to the next eruption); Azzalini and Bowman (1990), as shipped with R."""
    with as_file(files(__package__) / "faithful.csv") as path:
        return read_table(path)


def load_wine() -> Table:
    """The wine recognition data: 178 wines from three cultivars, 13 chemical measurements
    (``alcohol``, ``malic_acid``, ..., ``flavanoids``, ..., ``proline``), each in its own
    units; Forina et al., UCI, as bundled with scikit-learn. The cultivars are not included."""
    from sklearn.datasets import load_wine as sklearn_wine

    bunch = sklearn_wine()
    return Table(np.asarray(bunch.data, dtype=np.float64), [str(c) for c in bunch.feature_names])


def load_digits() -> Table:
    """Handwritten digits: 1797 images of 8x8 pixels, 64 columns ``pixel_<row>_<col>`` of grey
    levels 0-16 (several are constant or almost so at the edges); UCI, as bundled with
    scikit-learn. The digit labels are not included."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return Table(np.asarray(bunch.data, dtype=np.float64), [str(c) for c in bunch.feature_names])


__all__ = ["load_digits", "load_faithful", "load_wine"]
