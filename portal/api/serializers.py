from django.contrib.auth import get_user_model
from rest_framework import serializers

from portal.models import Lease
from portal.roles import user_roles


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "is_staff", "roles"]

    def get_roles(self, user) -> list[str]:
        return sorted(user_roles(user))


class LeaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lease
        fields = [
            "name",
            "holder_identity",
            "lease_duration_seconds",
            "acquire_time",
            "renew_time",
            "lease_transitions",
        ]
