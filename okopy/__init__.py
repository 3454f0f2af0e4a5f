"""okopy: Oko-style stateful BPF filters for Open vSwitch."""

__version__ = "0.1.0"
