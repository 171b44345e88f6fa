"""``/api/v1/ci/reports/``: the daily metrics and the weekly pattern analysis, as JSON or CSV
(``?format=csv``). Thin adapters (DESIGN.md): the date checked in, a service called, its figures
out; a bad date is the 400 error envelope."""

from __future__ import annotations

from datetime import date, timedelta

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from escalation.services import daily_reports, reports, weekly_reports
from portal.api.permissions import IsOperatorOrQA
from portal.api.renderers import SafeJSONRenderer
from portal.api.schema import error_responses


class CsvRenderer(BaseRenderer):
    """Lets ``?format=csv`` through content negotiation; the views answer the CSV themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else b""


class ReportQuerySerializer(serializers.Serializer):
    date = serializers.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        help_text="YYYY-MM-DD in the portal's time zone; default yesterday; not in the future "
        "nor before 2000-01-01.",
    )


# --- what the answers look like (the OpenAPI schema) -------------------------------------------
class SlaComplianceSerializer(serializers.Serializer):
    total_failures = serializers.IntegerField(help_text="SLA records started that day")
    sla_hits = serializers.IntegerField(help_text="resolved within their SLA")
    sla_misses = serializers.IntegerField(help_text="exceeded, or active past the deadline")
    sla_pending = serializers.IntegerField(help_text="still running")
    compliance_rate = serializers.FloatField(
        allow_null=True, help_text="sla_hits * 100 / total_failures, two decimals (truncated)"
    )


class OverrideUsageSerializer(serializers.Serializer):
    total_overrides = serializers.IntegerField(help_text="overrides approved that day")
    emergency_overrides = serializers.IntegerField(help_text="justification says emergency")
    override_rate = serializers.FloatField(allow_null=True)


class FailureDistributionSerializer(serializers.Serializer):
    generator_drift = serializers.IntegerField()
    security = serializers.IntegerField(help_text="every security_* type")
    infrastructure = serializers.IntegerField(help_text="every type naming infrastructure")
    by_type = serializers.DictField(child=serializers.IntegerField())
    by_category = serializers.DictField(
        child=serializers.IntegerField(), help_text="the CI health dashboard's categories"
    )


class TeamResolutionSerializer(serializers.Serializer):
    team = serializers.CharField()
    resolved = serializers.IntegerField()
    avg_resolution_time_hours = serializers.FloatField()


class TeamPerformanceSerializer(serializers.Serializer):
    resolved = serializers.IntegerField(help_text="SLA records resolved that day")
    avg_resolution_time_hours = serializers.FloatField(allow_null=True)
    fastest_resolving_team = serializers.CharField(allow_null=True)
    by_team = TeamResolutionSerializer(many=True)


class DailyReportSerializer(serializers.Serializer):
    date = serializers.DateField()
    timezone = serializers.CharField()
    complete = serializers.BooleanField(help_text="false for today: the day is not over")
    computed_at = serializers.DateTimeField()
    sla_compliance = SlaComplianceSerializer()
    override_usage = OverrideUsageSerializer()
    failure_distribution = FailureDistributionSerializer()
    team_performance = TeamPerformanceSerializer()
    failures_reported = serializers.IntegerField(help_text="failed jobs reported that day")


class WeeklyTotalsSerializer(serializers.Serializer):
    total_failures = serializers.IntegerField()
    sla_hits = serializers.IntegerField()
    sla_misses = serializers.IntegerField()
    compliance_rate = serializers.FloatField(allow_null=True)
    total_overrides = serializers.IntegerField()
    emergency_overrides = serializers.IntegerField()


class TypeCountSerializer(serializers.Serializer):
    failure_type = serializers.CharField()
    count = serializers.IntegerField()


class OverrideUserSerializer(serializers.Serializer):
    user = serializers.CharField()
    overrides = serializers.IntegerField()
    emergency_overrides = serializers.IntegerField()


class HourMissesSerializer(serializers.Serializer):
    hour = serializers.IntegerField(min_value=0, max_value=23)
    misses = serializers.IntegerField()


class RepeatingFingerprintSerializer(serializers.Serializer):
    repository = serializers.CharField()
    fingerprint = serializers.CharField()
    signature = serializers.CharField()
    failure_type = serializers.CharField()
    occurrences = serializers.IntegerField()
    last_seen = serializers.DateTimeField()


class WeeklyFlakyTestSerializer(serializers.Serializer):
    repository = serializers.CharField()
    test = serializers.CharField()
    count = serializers.IntegerField()
    last_seen = serializers.DateTimeField()


class WeeklyDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    failures = serializers.IntegerField()
    sla_misses = serializers.IntegerField()


class RecommendationSerializer(serializers.Serializer):
    rule = serializers.CharField()
    message = serializers.CharField()


class WeeklyReportSerializer(serializers.Serializer):
    week_starting = serializers.DateField()
    week_ending = serializers.DateField()
    timezone = serializers.CharField()
    complete = serializers.BooleanField()
    totals = WeeklyTotalsSerializer()
    most_common_types = TypeCountSerializer(many=True)
    top_override_users = OverrideUserSerializer(many=True)
    sla_misses_by_hour = HourMissesSerializer(many=True)
    repeating_fingerprints = RepeatingFingerprintSerializer(many=True)
    flaky_tests = WeeklyFlakyTestSerializer(many=True)
    daily = WeeklyDaySerializer(many=True)
    recommendations = RecommendationSerializer(many=True)


def csv_response(rows, filename: str) -> HttpResponse:
    response = HttpResponse(reports.csv_text(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


BAD_DATE = error_responses({400: "Not a YYYY-MM-DD date, or a day in the future"})[400]
FORMAT = OpenApiParameter(
    "format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: a spreadsheet download"
)


def report_schema(serializer, description: str, csv_columns: str, summary: str):
    """The OpenAPI description both reports share: JSON or CSV for a date, 400 for a bad one."""
    return extend_schema(
        parameters=[ReportQuerySerializer, FORMAT],
        responses={
            (200, "application/json"): OpenApiResponse(serializer, description=description),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description=f"?format=csv: {csv_columns} rows"
            ),
            (400, "application/json"): BAD_DATE,
        },
        summary=summary,
    )


class ReportView(APIView):
    permission_classes = [IsOperatorOrQA]
    renderer_classes = [SafeJSONRenderer, CsvRenderer]

    def report_date(self, request) -> date:
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data.get("date") or reports.local_today() - timedelta(days=1)

    def wants_csv(self, request) -> bool:
        # No renderer yet when the request was refused before negotiation (a bad query string,
        # an unknown ?format=): that refusal is the JSON envelope.
        return getattr(getattr(request, "accepted_renderer", None), "format", "") == "csv"

    def finalize_response(self, request, response, *args, **kwargs):
        # An error asked for as CSV is still the JSON error envelope.
        if getattr(response, "exception", False) and self.wants_csv(request):
            request.accepted_renderer = SafeJSONRenderer()
            request.accepted_media_type = SafeJSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class DailyReportView(ReportView):
    """The seed's daily metrics of one day (portal time zone)."""

    @report_schema(
        DailyReportSerializer,
        "The stored report (computed now if missing); today's figures so far, with complete false.",
        "section,name,value",
        "Daily escalation metrics",
    )
    def get(self, request):
        day = self.report_date(request)
        view = daily_reports.daily_report(day)
        if self.wants_csv(request):
            return csv_response(daily_reports.csv_rows(view), f"ci-daily-{day.isoformat()}.csv")
        body = {**view.metrics, "complete": view.complete, "computed_at": view.computed_at}
        return Response(DailyReportSerializer(body).data)


class WeeklyReportView(ReportView):
    """The seed's weekly pattern analysis of the seven days ending on a date."""

    @report_schema(
        WeeklyReportSerializer,
        "The seven days ending on date (included), computed now, with the recommendations.",
        "section,name,value,detail",
        "Weekly escalation pattern analysis",
    )
    def get(self, request):
        day = self.report_date(request)
        analysis = weekly_reports.analyze_weekly_patterns(day)
        if self.wants_csv(request):
            return csv_response(
                weekly_reports.csv_rows(analysis), f"ci-weekly-{day.isoformat()}.csv"
            )
        return Response(WeeklyReportSerializer(analysis).data)
