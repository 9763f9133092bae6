"""Simulated VMs of a lab: a process per VM holding real guest memory and a dirtying workload.

    from vmknet.vm import manage
    rec = manage.create(dc, "lab", "web01", "esx01", memory=64 << 20, dirty_rate=50_000_000)
    manage.records("lab"); manage.status("lab", "web01"); manage.destroy("lab", "web01")

See docs/vmotion.md.
"""
