"""The one thing pyproject.toml cannot say: the optional C loops of the EM kernel.

``src/gaussmix/em/_kernels.c`` is built when a C compiler is there. If it is not, or the build
fails, gaussmix installs without it and runs the same loops in numpy (``gaussmix.em.stats``):
the same results to rounding, slower (benchmarks/README.md).
"""

import os

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gaussmix.em._kernels",
            sources=["src/gaussmix/em/_kernels.c"],
            extra_compile_args=["-O3"] if os.name == "posix" else [],
            libraries=["m"] if os.name == "posix" else [],
            optional=True,
        )
    ]
)
