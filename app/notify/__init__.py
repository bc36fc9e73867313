"""Notifiers: one module per target type, each with a pure ``build_payload`` and a ``send`` that
returns a classified ``DeliveryResult``. ``registry`` maps target types to notifiers."""
