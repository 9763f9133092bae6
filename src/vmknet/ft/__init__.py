"""Fault Tolerance: a primary VM and a secondary on another host kept in step by checkpoints.

    from vmknet.ft import enable
    enable.ft_on(dc, "lab", "web01", "esx02")    # secondary synced over the FT adapters
    enable.ft_status("lab", "web01"); enable.ft_off("lab", "web01")

See docs/ft.md.
"""
