"""Routes under ``/api/v1/`` (included by ``portal/api/urls.py`` through PORTAL_API_URLCONFS)."""

urlpatterns: list = []
