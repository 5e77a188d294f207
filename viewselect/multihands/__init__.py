"""The MultiHands commands' content: ``evaluate`` tables and the ``multihands-report``."""
