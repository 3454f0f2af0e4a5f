"""Open vSwitch: the patched source tree, its build, and running it."""
