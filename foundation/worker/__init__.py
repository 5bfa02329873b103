"""The Faust worker's runtime: what every agent of ``streams`` and ``consumers`` runs on.

``app.WorkerApp`` (the Faust app, its topics and hooks), ``ownership`` (partition leases),
``durable`` (writes that return once Kafka acknowledged them), ``ordering`` and
``pipeline`` (acknowledgement only past recorded outcomes), ``watchdog`` (no silent
stall), ``lag`` (consumer lag and the refetch of stuck partitions) and ``ops`` (the
worker's ``/healthz``, ``/readyz`` and ``/metrics``). Nothing here knows a Controller
endpoint or an event type.
"""
