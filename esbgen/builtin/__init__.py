"""The plugins esbgen ships, registered by name exactly as entry points are."""
