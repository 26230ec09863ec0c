"""The ``micronetwork`` command."""
