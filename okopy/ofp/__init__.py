"""okopy's OpenFlow extension: constants, messages, the bpf action and field.

Pure codecs (bytes in, bytes out), mirrored from the patch series' header
`include/openflow/okopy-ext.h`; tests/unit/test_ofp_header.py parses that
header and compares.  `okopy.controller.openflow` adapts them to os-ken.
"""
