from django.contrib.auth import get_user_model
from rest_framework import serializers

from portal.models import Heartbeat
from portal.roles import user_roles


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "is_staff", "roles"]

    def get_roles(self, user) -> list[str]:
        return sorted(user_roles(user))


class LeaseSerializer(serializers.Serializer):
    """A lease as the configured backend holds it (``portal.leader.LeaseRecord``)."""

    name = serializers.CharField()
    holder_identity = serializers.CharField(help_text="Empty when released.")
    lease_duration_seconds = serializers.FloatField()
    acquire_time = serializers.DateTimeField(allow_null=True)
    renew_time = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    lease_transitions = serializers.IntegerField(help_text="The fencing token of the current term.")
    held = serializers.SerializerMethodField(
        help_text="A holder is set and the lease is unexpired."
    )
    observed_at = serializers.DateTimeField(help_text="The backend's clock when read.")

    def get_held(self, record) -> bool:
        return record.is_held_by_other(identity="")


class HeartbeatSerializer(serializers.ModelSerializer):
    class Meta:
        model = Heartbeat
        fields = ["id", "worker", "beat_identity", "fencing_token", "ran_at"]
