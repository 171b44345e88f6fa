from django.apps import AppConfig


class ItsmConfig(AppConfig):
    name = "itsm"
    verbose_name = "ITSM"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Outbox handlers register themselves on import; every process needs all of them.
        from itsm import metrics
        from itsm.services import notifications, tickets  # noqa: F401

        metrics.initialise_series()
