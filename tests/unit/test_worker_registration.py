import importlib

from parkstream.worker import WORKER_MODULES


def test_the_worker_registers_the_planning_and_dispatch_agents_and_views():
    for module in WORKER_MODULES:
        importlib.import_module(module)
    from streams.app import app

    agents = set(app.agents)
    assert {"streams.app.plan", "consumers.dispatch.dispatch"} <= agents
    assert {"journal", "sessions"} <= set(app.tables)
    assert {"/healthz", "/readyz", "/metrics", "/sessions/{reference_id}"} <= set(app.web.views)
