# -*- coding: utf-8 -*-
"""``python manage.py esbgen ...`` inside the ESB's own Django project.

esbgen itself needs Python 3.10 and Django 4.2, which cannot be installed into
the ESB's virtualenv (Python 2.7 / Django 1.8, or Python 3.6-3.7 / Django 1.11)
without breaking the ESB.  This app has no dependencies and no models: its
``esbgen`` command runs the esbgen command installed in an environment of its
own (see ``runner``), handing over the ESB root, the ESB's database and the
ESB's interpreter through the environment.

The source is valid Python 2.7 and 3.6+, for Django 1.8 and later.
"""

__version__ = "0.2.0"
