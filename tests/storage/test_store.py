"""Opening the store: where it lives, one clear sentence for every store that cannot be used,
and many threads writing through one Store without losing a row."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from core.errors import DataFolderError, GloveWatchError, StoreError
from core.storage import close_store, open_store
from core.storage.sessions import ResultRow, SessionInfo


def _session(store, station: str = "saw-1") -> int:
    return store.sessions.start(
        SessionInfo("batch", "a.jpg", station, "w.pt", "abc", 0.25, 0.7, 640)
    )


def _one_sentence(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text and text.endswith(".")
    return text


def test_fresh_store_is_wal_and_current(store, gw_home):
    from core.storage.migrations import SCHEMA_VERSION

    db = gw_home / "glovewatch.sqlite"
    assert db.exists() and store.url == f"sqlite:///{db}"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert store.db.schema_version() == SCHEMA_VERSION
    for folder in ("batch", "evidence", "runs", "datasets", "uploads", "exports", "logs"):
        assert (gw_home / folder).is_dir()


def test_open_store_is_one_store_per_url(store, tmp_path):
    assert open_store() is store
    other = open_store(str(tmp_path / "other.sqlite"))
    assert other is not store and (tmp_path / "other.sqlite").exists()
    assert open_store(f"sqlite:///{tmp_path / 'other.sqlite'}") is other
    close_store(other)


def test_failed_transaction_keeps_earlier_rows(store):
    sid = _session(store)
    store.sessions.add_result(sid, ResultRow(source="ok.jpg"))
    with pytest.raises(IntegrityError):
        store.sessions.add_result(999, ResultRow(source="orphan.jpg"))  # no such session
    assert store.sessions.day_summary().images == 1
    # the failed write left no half row behind, and the store still takes writes
    store.sessions.add_result(sid, ResultRow(source="later.jpg"))
    assert store.sessions.day_summary().images == 2


def test_unwritable_home_gives_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "home"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("GLOVEWATCH_HOME", str(blocker / "sub"))
    monkeypatch.delenv("GLOVEWATCH_DB_URL", raising=False)
    with pytest.raises(DataFolderError, match="GLOVEWATCH_HOME") as err:
        open_store()
    _one_sentence(err.value)
    assert isinstance(err.value, PermissionError)


@pytest.mark.parametrize(
    "content",
    [
        b"this is a text file, not a database " * 10,
        bytes(range(256)) * 8,
    ],
)
def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path, content):
    path = tmp_path / "glovewatch.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="is not a GloveWatch store") as err:
        open_store(str(path))
    text = _one_sentence(err.value)
    assert "glovewatch.sqlite" in text and "nothing was changed" in text
    assert path.read_bytes() == content


def test_a_file_that_is_not_sqlite_in_the_data_folder(gw_home):
    gw_home.mkdir(parents=True)
    (gw_home / "glovewatch.sqlite").write_text("PK\x03\x04 a zip perhaps, certainly no store")
    with pytest.raises(StoreError, match="not a GloveWatch store"):
        open_store()


def test_read_only_connection_gives_a_clear_error(store, gw_home):
    """A store that may only be read (here a read-only SQLite URI, which holds for root too)
    refuses writes with one sentence, and reads still work."""
    db = gw_home / "glovewatch.sqlite"
    ro = open_store(f"sqlite:///file:{db}?mode=ro&uri=true")
    try:
        assert ro.users.all() == []
        with pytest.raises(StoreError, match="cannot be written") as err:
            ro.audit.add("ann", "test.write")
        _one_sentence(err.value)
    finally:
        close_store(ro)


def _chmod_is_enforced(path: Path) -> bool:
    return not os.access(path, os.W_OK)


def test_read_only_data_folder_gives_a_clear_error(tmp_path, monkeypatch):
    home = tmp_path / "ro-home"
    home.mkdir()
    home.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if not _chmod_is_enforced(home):
            pytest.skip("running as root: a read-only folder is still writable")
        monkeypatch.setenv("GLOVEWATCH_HOME", str(home))
        monkeypatch.delenv("GLOVEWATCH_DB_URL", raising=False)
        with pytest.raises(DataFolderError, match="not writable") as err:
            open_store()
        _one_sentence(err.value)
    finally:
        home.chmod(stat.S_IRWXU)


def test_read_only_store_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "ro.sqlite"
    close_store(open_store(str(path)))  # a current store
    for extra in tmp_path.glob("ro.sqlite-*"):
        extra.unlink()
    path.chmod(stat.S_IRUSR)
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if not _chmod_is_enforced(path):
            pytest.skip("running as root: a read-only file is still writable")
        with pytest.raises(GloveWatchError) as err:
            st = open_store(str(path))
            st.audit.add("ann", "test.write")
        assert isinstance(err.value, StoreError)
        assert "cannot be written" in _one_sentence(err.value)
    finally:
        tmp_path.chmod(stat.S_IRWXU)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_threads_writing_through_one_store_lose_no_rows(store):
    sid = _session(store)
    per_thread, threads = 25, 4
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                store.sessions.add_result(sid, ResultRow(source=f"t{n}-{i}.jpg", violating=1))
                store.audit.add(f"thread-{n}", "test.write", str(i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors, errors
    day = store.sessions.day_summary()
    assert day.images == per_thread * threads and day.violating == per_thread * threads
    assert len(store.audit.recent(limit=1000)) == per_thread * threads


def test_concurrent_rule_saves_get_distinct_versions(store):
    """Two editors saving the same station at once: every save gets its own version."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def save(who: str) -> None:
        try:
            start.wait()
            for i in range(15):
                store.stations.save_rule("Press 2", f'{{"n": "{who}{i}"}}', who)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=save, args=(w,)) for w in ("ann", "bob")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors, errors
    versions = [r.version for r in store.stations.history("Press 2")]
    assert sorted(versions) == list(range(1, 31))
