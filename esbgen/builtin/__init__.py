"""The plugins esbgen ships: entry points of its own distribution (pyproject.toml), trylast."""
