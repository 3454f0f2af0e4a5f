"""Traffic: test packets and reproducible mixes (`packets`), pcap files
(`pcap`)."""
