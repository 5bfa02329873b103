from foundation.settings import Settings
from parkstream.worker import build_worker


def test_the_worker_registers_the_planning_and_dispatch_agents_and_views():
    app = build_worker(Settings()).app

    agents = set(app.agents)
    assert {"streams.planning.plan", "consumers.dispatch.dispatch"} <= agents
    assert {"journal", "sessions"} <= set(app.tables)
    assert {"/healthz", "/readyz", "/metrics", "/sessions/{reference_id}"} <= set(app.web.views)


def test_the_worker_refreshes_the_controllers_user_types_and_zones_on_timers():
    app = build_worker(Settings()).app

    # Faust keeps timers and tasks in _app_tasks (functools.wraps keeps their names).
    tasks = {(task.__module__, task.__name__) for task in app._app_tasks}
    assert {
        ("consumers.user_types", "refresh_user_types"),
        ("streams.zones", "refresh_controller_zones"),
        ("streams.zones", "first_zones_refresh"),
    } <= tasks
