from django.apps import AppConfig


class ItsmConfig(AppConfig):
    name = "itsm"
    verbose_name = "ITSM"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Outbox handlers register themselves on import, and the tasks module registers the
        # outbox's dispatcher: every process needs all of them.
        from itsm import metrics, tasks  # noqa: F401
        from itsm.services import notifications, sla, tickets  # noqa: F401
        from portal.metrics import register_scrape_collector

        metrics.initialise_series()
        register_scrape_collector(metrics.SlaCollector(sla.open_and_breached_by_platform))
