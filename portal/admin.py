from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from portal.leader import backend_from_settings
from portal.models import Heartbeat, Lease


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the portal writes itself: visible for audit, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    """Leases as the configured backend holds them (``LEADER_BACKEND``).

    With Redis the leases live in Redis and the ``Lease`` table stays empty, so the list reads the
    backend, as the dashboard and ``/api/v1/leases/`` do, rather than the table.
    """

    def has_delete_permission(self, request, obj=None):
        # A lease is released by its holder; deleting it by hand would break the fencing order.
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            records, error = backend_from_settings().records(), ""
        except Exception as exc:  # the backend is down: say so instead of a 500
            records, error = [], f"{type(exc).__name__}: the lease backend did not answer."
        query = request.GET.get("q", "").strip().lower()
        if query:
            records = [
                record
                for record in records
                if query in record.name.lower() or query in record.holder_identity.lower()
            ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Leases",
            "subtitle": None,
            "opts": self.model._meta,
            "records": [
                {"record": record, "held": record.is_held_by_other(identity="")}
                for record in records
            ],
            "backend_name": settings.LEADER_ELECTION["BACKEND"],
            "error": error,
            "query": request.GET.get("q", ""),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/portal/lease/backend_list.html", context)


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["ran_at", "worker", "beat_identity", "fencing_token"]
    list_filter = ["worker"]
    date_hierarchy = "ran_at"
