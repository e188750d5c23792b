# -*- coding: utf-8 -*-
from django.apps import AppConfig


class EsbgenDjangoConfig(AppConfig):
    name = "esbgen_django"
    verbose_name = "esbgen"
