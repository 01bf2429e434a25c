"""Test support shared by the packages' tests (process management, DDS peers). Not installed."""
