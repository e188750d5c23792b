# -*- coding: utf-8 -*-
from django.conf import settings

from esb.utils import SmartHost

SYSTEM_NAME = "{{ cookiecutter.SYSTEM_NAME }}"

# The host of app {{ cookiecutter.app_code }}: define {{ cookiecutter.host_setting }} in configs/default.py
host = SmartHost(host_prod=getattr(settings, "{{ cookiecutter.host_setting }}", ""))
