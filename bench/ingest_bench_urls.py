"""URLs for bench/ingest_bench.py: the portal's, plus the baseline: a bare DRF endpoint that
receives the same body and inserts one row."""

from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.models import Heartbeat


class BareBody(serializers.Serializer):
    repository = serializers.CharField(max_length=200)


class BareInsert(APIView):
    """Parses the body (the same JSON parser and edge checks), validates one field, inserts one
    row: receiving a failure report and nothing else."""

    def post(self, request):
        body = BareBody(data={"repository": request.data.get("repository")})
        body.is_valid(raise_exception=True)
        row = Heartbeat.objects.create(worker=body.validated_data["repository"])
        return Response({"id": row.pk}, status=201)


urlpatterns = [
    path("bench/bare", BareInsert.as_view()),
    path("", include("portal.urls")),
]
