"""The templates of `esbgen new`, one folder each (package data: see setup.py)."""
