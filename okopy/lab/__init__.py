"""The lab testbed: topologies and the lab (`testbed`), hosts in namespaces
(`hosts`), the controller as a child process (`controller`), the demo
(`demo`), and okopy's nodes for Mininet (`mininet`, for `mn --custom`)."""
