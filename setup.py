"""Packaging beyond what pyproject.toml can say: `conf/` ships as the package `yolo_slim.conf`.

The configs stay at the repository's top level (the entry scripts and Hydra read them
there); the wheel maps `conf/` onto `yolo_slim/conf/` so that the installed `yolo-slim`
command composes the same configs. Every other setting is in pyproject.toml.
"""

from setuptools import find_namespace_packages, find_packages, setup

CONF = ["yolo_slim.conf", *(f"yolo_slim.conf.{name}" for name in find_namespace_packages("conf", exclude=["*__pycache__*"]))]

setup(
    packages=[*find_packages("src"), *CONF],
    package_dir={"": "src", "yolo_slim.conf": "conf"},
    package_data={"yolo_slim": ["py.typed"], **{name: ["*.yaml", "*.cfg"] for name in CONF}},
)
