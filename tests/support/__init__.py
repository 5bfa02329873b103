"""Test support: real processes, a recording Controller, Kafka readers."""
