"""A Django project shaped like the ESB (app ``bkcore``, table ``esb_component_system``), for esbgen's tests."""
