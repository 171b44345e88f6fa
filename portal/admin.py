from django.contrib import admin

from portal.models import Heartbeat, Lease


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the portal writes itself: visible for audit, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "holder_identity",
        "renew_time",
        "lease_duration_seconds",
        "lease_transitions",
    ]
    search_fields = ["name", "holder_identity"]


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["ran_at", "worker", "beat_identity", "fencing_token"]
    list_filter = ["worker"]
    date_hierarchy = "ran_at"
