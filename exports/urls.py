"""Pages of the exports app under ``/exports/`` (included through settings.PORTAL_PAGE_URLCONFS)."""

app_name = "exports"

urlpatterns: list = []
