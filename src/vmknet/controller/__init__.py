"""The controller (vCenter's role): owns the inventory, plans per host, issues tickets,
serves the REST API."""
