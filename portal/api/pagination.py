"""Page-number pagination with a client-chosen page size (capped), strict about its parameters.

``page`` and ``page_size`` must be whole numbers of 1 or more (``page`` may also be ``last``):
anything else answers 400 in the envelope, naming the parameter, instead of DRF's silent default
(``page_size=0.44``) or a 404 (``page=0``). A ``page_size`` above 500 is capped; a page past the
last answers 404, as documented.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def _positive(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) < 1:
        raise ValidationError({name: "must be a whole number of 1 or more"}, code="invalid")
    return int(raw)


class PortalPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request, paginator) -> Any:
        if request.query_params.get(self.page_query_param) in self.last_page_strings:
            return paginator.num_pages
        return _positive(request, self.page_query_param) or 1

    def get_page_size(self, request) -> int:
        size = _positive(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = "A page number (1 is the first); past the last: 404."
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results per page (default {self.page_size}); above "
                    f"{self.max_page_size} counts as {self.max_page_size}."
                )
        return parameters
