"""esbgen-nginx: point the nginx upstreams of a BlueKing PaaS at new backends.

``esbgen swap web paas --to 127.0.0.1:8010`` edits the ``server`` lines of
upstream ``OPEN_PAAS`` in place, checks the new backend answers, runs
``nginx -t`` and ``nginx -s reload`` as one change of esbgen's journal, and
puts the file back byte for byte if anything fails.  The plugin module registered with esbgen is
:mod:`esbgen_nginx.plugin`.
"""

__version__ = "0.1.0"
