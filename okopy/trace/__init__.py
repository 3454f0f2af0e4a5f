"""Live tracing of a running switch's BPF programs (`okopy trace`,
`okopy top`) through the okopy:* USDT probes of the patched ovs-vswitchd.

events.py is pure: the probes' records, the filters, the rate cap's
arithmetic, what a line or a JSON object says, and okopy top's
aggregation.  probes.py is the edge: it finds the switch, asks it for its
programs and flows, compiles and attaches the bcc programs, and reads
their output.
"""
