"""The ACL classifier: rules as sets per field (rules, sets), compiled
into the maps of bpf/acl.c (compile), read from iptables-save (iptables),
and written out as a policy (policy)."""
