"""Databases for the tests: every data test runs on SQLite and on PostgreSQL.

PostgreSQL is required in CI (`CI=true`); on a laptop without it those tests are skipped with
the reason. Each session migrates one PostgreSQL database and one SQLite file once; each test
gets them emptied (PostgreSQL) or a fresh copy (SQLite). `REELROUTE_TEST_DATABASES=sqlite` (the
fast tier, `make test-fast`) runs the data tests on SQLite only.

Tiers (markers): `e2e` (a Prefect server, workers, the emulator), `browser` (chromium),
`torch` (the tiny Wan pipeline), `postgres` (given to every test that uses the PostgreSQL
server, here). `make test-fast` runs the rest.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from reelroute.models.assembly import Settings, load_settings
from reelroute.models.store.db import make_engine
from reelroute.models.store.migrate import upgrade
from reelroute.providers.emulator import EmulatorScript, EmulatorServer, RunwayEmulator

PG_ADMIN = os.environ.get("REELROUTE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_unavailable_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        return f"PostgreSQL at {PG_ADMIN} is not reachable ({str(error).strip()[:120]})"
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the PostgreSQL server (skips locally, fails in CI, when it is down)."""
    reason = pg_unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI needs it (.ci/run starts it)")
        pytest.skip(f"{reason}; start it with: pg_ctlcluster <version> main start")
    return PG_ADMIN


def new_pg_database(admin_url: str, prefix: str = "reelroute_test") -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def drop_pg_database(admin_url: str, url: str) -> None:
    """Drop a database made by new_pg_database."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_migrated(pg_server: str) -> Iterator[str]:
    url = new_pg_database(pg_server)
    upgrade(url)
    yield url
    drop_pg_database(pg_server, url)


@pytest.fixture(scope="session")
def sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _tables() -> str:
    """Every table of the data model (what a PostgreSQL test starts without)."""
    from reelroute.models.assembly import metadata

    return ", ".join(sorted(metadata.tables))


TABLES = _tables()


DATABASES = [
    name.strip()
    for name in os.environ.get("REELROUTE_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]
"""The databases the data tests run on."""

POSTGRES_FIXTURES = {"pg_server", "pg_migrated"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the PostgreSQL server `postgres`."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        uses_pg = "postgresql" in params.values() or POSTGRES_FIXTURES & set(
            getattr(item, "fixturenames", ())
        )
        if uses_pg:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_migrated")
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {TABLES}"))
        engine.dispose()
        return url
    template: Path = request.getfixturevalue("sqlite_migrated")
    path = tmp_path / "reelroute.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return load_settings(_env_file=None, database_url=db_url, storage_url=str(tmp_path / "storage"))


@pytest.fixture(params=DATABASES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind (no schema): for migration and CLI tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin: str = request.getfixturevalue("pg_server")
    url = new_pg_database(admin, "reelroute_empty")
    yield url
    drop_pg_database(admin, url)


@contextmanager
def database_outage(url: str) -> Iterator[None]:
    """The PostgreSQL database at `url` refuses every connection, and loses the ones it had,
    until the block ends: a failover or a restart, for that database alone."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    try:
        yield
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "reelroute-test",
    "AWS_SECRET_ACCESS_KEY": "reelroute-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """An S3-compatible server on loopback (moto), speaking the real protocol to s3fs; yields
    the AWS_* environment that points a process at it (also set for this process)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**S3_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_url(s3_server: dict[str, str]) -> str:
    """A storage URL in a bucket of its own on the S3 server."""
    return f"s3://reelroute-{uuid.uuid4().hex[:12]}/store"


@pytest.fixture
def emulator() -> Iterator[RunwayEmulator]:
    """The Runway API emulator on loopback (`emulator.url`), its tasks taking 0.2 s."""
    with EmulatorServer(RunwayEmulator(EmulatorScript(latency_s=0.2))) as server:
        yield server.emulator
