"""The host agent (hostd/vpxa's role): realises its host, supervises its processes, heartbeats."""
