"""A PostgreSQL database of a benchmark's own: created empty, migrated, dropped at the end.

The server comes from ``BENCH_DATABASE_URL`` (default: the local PostgreSQL); the database is
named by the benchmark and recreated on each run.
"""

from __future__ import annotations

import os

SERVER = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")


def drop_database(name: str) -> None:
    from django.db import connections

    connections.close_all()
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def setup_django(name: str, **environment: str) -> None:
    """Django on the benchmark's database (no Redis: in-process layers), migrated."""
    os.environ["DATABASE_URL"] = f"{SERVER.rsplit('/', 1)[0]}/{name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.pop("REDIS_URL", None)
    os.environ.update(environment)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
