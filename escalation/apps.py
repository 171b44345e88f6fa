from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "escalation"
    verbose_name = "Escalation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Outbox handlers register on import; the collector reads open escalations at scrape time.
        from escalation import metrics, tasks  # noqa: F401
        from escalation.models import FailureType
        from escalation.services import notifications, reports, routing  # noqa: F401
        from portal.metrics import register_scrape_collector
        from portal.overview import register_overview_section
        from portal.roles import OPERATORS, QA

        metrics.initialise_series(list(FailureType.values))
        register_scrape_collector(metrics.OpenEscalationsCollector(reports.open_by_type))
        register_overview_section(reports.overview_section, roles=(OPERATORS, QA))
