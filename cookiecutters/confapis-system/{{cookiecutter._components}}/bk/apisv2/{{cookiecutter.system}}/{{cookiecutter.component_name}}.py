# -*- coding: utf-8 -*-
import re

from components.component import ConfComponent

from .toolkit import configs


class {{ cookiecutter.component_class }}(ConfComponent):
    """
{% raw %}    apiLabel {{ _("{% endraw %}{{ cookiecutter.SYSTEM_NAME }}{% raw %}") }}

    {{ common_args_desc }}
{% endraw %}    """

    sys_name = configs.SYSTEM_NAME

    def _get_cleaned_path(self, path):
        # The app serves its API under /o/<app code>/; the host setting already points at the app.
        return re.sub(r"^/o/{{ cookiecutter.app_code }}", "", path)

    def handle(self):
        response = self.outgoing.http_client.request(
            self.dest_http_method,
            host=configs.host,
            path=self._get_cleaned_path(self.dest_path),
            params=self.request.kwargs if self.dest_http_method == "GET" else None,
            data=None if self.dest_http_method == "GET" else self.request.kwargs,
            headers={"Bk-Username": self.current_user.username, "Bk-App-Code": self.request.app_code},
        )
        self.response.payload = response
