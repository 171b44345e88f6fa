"""The API's JSON renderer: an answer always encodes, even over text stored before the edge
refused it (a lone surrogate in an old row would otherwise turn every read into a 500)."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

from portal.text import replace_invalid_text


class SafeJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return super().render(replace_invalid_text(data), accepted_media_type, renderer_context)
