"""vmknet: the VMkernel networking layer (TCP/IP stacks, VMkernel adapters, system traffic).

The public facade is :class:`vmknet.inventory.Inventory`.
"""
