"""The store: schema, migrations, connections and one repository per domain.

Nothing outside this package writes SQL. :func:`open_store` gives the process's
:class:`Store` for the configured database (``GLOVEWATCH_DB_URL``, else the SQLite file in
the data folder; ``postgresql://`` URLs select PostgreSQL); each repository returns typed rows.
The same repositories and queries run on both backends.
"""

from __future__ import annotations

from core.config import ensure_home, settings
from core.storage.accounts import AuditRepo, UserRepo
from core.storage.bulk import BulkRepo
from core.storage.coverage import CoverageRepo
from core.storage.database import Database, forget, normalize_url, now, open_database
from core.storage.events import EventRepo
from core.storage.fleet import FleetRepo
from core.storage.history import HistoryRepo
from core.storage.retention import RetentionRepo
from core.storage.sessions import SessionRepo
from core.storage.site import SiteRepo
from core.storage.stations import StationRepo
from core.storage.training import DatasetRepo, RegistryRepo, RunRepo


class Store:
    """Every repository of one database."""

    def __init__(self, db: Database):
        self.db = db
        self.sessions = SessionRepo(db)
        self.events = EventRepo(db)
        self.coverage = CoverageRepo(db)
        self.stations = StationRepo(db)
        self.history = HistoryRepo(db)
        self.retention = RetentionRepo(db)
        self.datasets = DatasetRepo(db)
        self.runs = RunRepo(db)
        self.registry = RegistryRepo(db)
        self.users = UserRepo(db)
        self.audit = AuditRepo(db)
        self.bulk = BulkRepo(db)
        self.site = SiteRepo(db)
        self.fleet = FleetRepo(db)

    @property
    def url(self) -> str:
        return self.db.url


_STORES: dict[str, Store] = {}


def open_store(url: str | None = None) -> Store:
    """The store at ``url`` (default: the configured one, creating the data folder).

    Raises :class:`~core.errors.DataFolderError` for an unwritable data folder and
    :class:`~core.errors.StoreError` for a store that cannot be used.
    """
    if url is None:
        s = settings()
        if not s.db_url:
            ensure_home(s)
        url = s.store_url
    elif "://" not in url:  # a plain path: a SQLite file
        url = f"sqlite:///{url}"
    url = normalize_url(url)
    db = open_database(url)
    store = _STORES.get(url)
    if store is None or store.db is not db:
        store = _STORES[url] = Store(db)
    return store


def close_store(store: Store) -> None:
    """Forget a store and close its connections (tests; before a store file is replaced)."""
    _STORES.pop(store.url, None)
    forget(store.url)


__all__ = ["Database", "Store", "close_store", "now", "open_store"]
