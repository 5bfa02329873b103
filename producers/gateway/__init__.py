"""The OPS-COM-compatible HTTP gateway (``producers.gateway.app``)."""

from producers.gateway.app import GATEWAY_KEY, create_app, create_ops_app, delivery_status, serve

__all__ = ["GATEWAY_KEY", "create_app", "create_ops_app", "delivery_status", "serve"]
