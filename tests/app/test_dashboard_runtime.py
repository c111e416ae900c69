"""One runtime, and one executor thread, per dashboard process, whatever the number of browser
sessions; the store's lease still elects one leader when another process runs one too."""

from __future__ import annotations

import threading
import time

import streamlit as st
from streamlit.testing.v1 import AppTest

from app.runtime import build_runtime
from app.settings import AxionSettings


def _session() -> None:
    import streamlit as st

    from app.state import dashboard_runtime

    st.session_state["runtime_id"] = id(dashboard_runtime())


def _executor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "axion-executor" and t.is_alive()]


def test_two_sessions_share_one_runtime_and_one_executor_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("AXION_DATABASE_URL", f"sqlite:///{tmp_path / 'axion.db'}")
    monkeypatch.setenv("AXION_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("AXION_EXECUTOR", "thread")
    monkeypatch.setenv("AXION_DEMO", "0")
    st.cache_resource.clear()
    before = len(_executor_threads())
    try:
        first = AppTest.from_function(_session, default_timeout=30).run()
        second = AppTest.from_function(_session, default_timeout=30).run()
        assert first.session_state["runtime_id"] == second.session_state["runtime_id"]
        assert len(_executor_threads()) == before + 1
        from app.state import dashboard_runtime

        shared = dashboard_runtime()  # the cached one both sessions use
        assert id(shared) == first.session_state["runtime_id"]
        # another process (here: another runtime on the same store) runs its own executor;
        # the account's lease lets exactly one of the two lead
        other = build_runtime(AxionSettings(executor="thread"))
        other.start_executor()
        try:
            executors = [shared.thread.executor, other.thread.executor]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if all(e.stats.ticks >= 3 for e in executors) and any(
                    e.is_leader for e in executors
                ):
                    break
                time.sleep(0.05)
            assert [e.is_leader for e in executors].count(True) == 1
            leader = next(e for e in executors if e.is_leader)
            assert other.queries.status.executor().holder == leader.holder_id
        finally:
            other.stop_executor()
            other.store.engine.dispose()
            shared.stop_executor()
            shared.store.engine.dispose()
    finally:
        st.cache_resource.clear()
