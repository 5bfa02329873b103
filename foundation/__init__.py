"""The foundation every package stands on: settings, errors, Kafka, logs, web, the Controller client.

It imports only the contract (``schemas``); ``foundation.worker`` adds the Faust worker's
runtime (the app, leases, acknowledged writes, ordered acknowledgements, the stall
watchdog) that the worker's packages (``streams``, ``consumers``) build on.
"""
