"""esbgen's packages, and the repository's top-level cookiecutters/ installed as esbgen.cookiecutters."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["esbgen", "esbgen.*"]), "esbgen.cookiecutters"],
      package_dir={"esbgen.cookiecutters": "cookiecutters"})
