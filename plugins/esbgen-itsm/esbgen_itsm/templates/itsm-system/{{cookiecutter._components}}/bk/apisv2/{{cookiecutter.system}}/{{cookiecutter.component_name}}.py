# -*- coding: utf-8 -*-
import json
import re

from components.component import ConfComponent

from .toolkit import configs


class {{ cookiecutter.component_class }}(ConfComponent):
    """
{% raw %}    apiLabel {{ _("流程服务通用接口") }}

    {{ common_args_desc }}
{% endraw %}    """

    sys_name = configs.SYSTEM_NAME

    def _get_cleaned_path(self, path):
        return re.sub(r"^/o/{{ cookiecutter.app_code }}", "", path)

    def handle(self):
        # ITSM takes JSON bodies and the acting user in a header.
        headers = {"Content-Type": "application/json", "BK-USERNAME": self.current_user.username}
        response = self.outgoing.http_client.request(
            self.dest_http_method,
            host=configs.host,
            path=self._get_cleaned_path(self.dest_path),
            data=json.dumps(self.request.kwargs),
            headers=headers,
        )
        self.response.payload = response
