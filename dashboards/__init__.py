"""Grafana dashboards as code (grafana-foundation-sdk).

``python -m dashboards.build`` writes one JSON file per dashboard to
``helm/parkstream/dashboards/``, where the chart turns each into a ConfigMap for the Grafana
sidecar. The committed JSON must equal a fresh build (``tests/unit/test_dashboards.py``), and
every query names only metrics catalogued in ``docs/metrics.md``.
"""
