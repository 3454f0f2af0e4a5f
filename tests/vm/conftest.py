"""Compiled objects for the VM tests."""

from tests.bpf.conftest import objects

__all__ = ["objects"]
