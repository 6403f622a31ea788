"""Helpers for testing and benchmarking MetaQore against real services (never imports pytest).

:mod:`metaqore.testing.postgres` starts a throw-away PostgreSQL server.
"""
