"""Edits that turn bytes into bytes: Python sources and cookiecutter templates."""
