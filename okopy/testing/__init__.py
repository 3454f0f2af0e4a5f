"""pytest fixtures for tests that need a real switch, shipped for users' tests.

Enable with `pytest_plugins = ["okopy.testing.fixtures"]` in a conftest.py.
"""
