"""Real traffic through a lab: sockets on the right adapters, ICMP echo, checks, counters.

    sockets      listen()/connect() on exactly the adapters resolve() picks (the engines' sockets)
    icmp, ping   ICMP echo from inside a stack namespace; vmkping and its ESXi output
    checks       `lab check`: per service and host pair, small and large-packet echoes
    stats        bytes/packets per adapter and per uplink
    kernel_info  sockets, routes, neighbours and links of one namespace (esxcli's kernel views)
"""
