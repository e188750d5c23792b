# -*- coding: utf-8 -*-
"""esbgen-django: ``python manage.py esbgen`` inside the ESB's own Django, with no dependencies.

Valid Python 2.7 and 3.6+ (the two ESB generations' interpreters); Django 1.8 and later.
"""
import io
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))

with io.open(os.path.join(HERE, "README.md"), encoding="utf-8") as handle:
    README = handle.read()

setup(
    name="esbgen-django",
    version="0.2.0",
    description="python manage.py esbgen inside the BlueKing ESB's own Django, running esbgen from its own environment",
    long_description=README,
    long_description_content_type="text/markdown",
    license="MIT",
    packages=["esbgen_django", "esbgen_django.management", "esbgen_django.management.commands"],
    install_requires=[],
    python_requires=">=2.7",
    zip_safe=False,
)
