"""The lab: one inventory store bound to one set of namespaces in the running kernel.

    lab = bound_lab(inv)            # Lab(name="lab", prefix="vmkl-lab.") or None
    lab = require_lab(inv)          # NotFound "No lab is up for this inventory: ..."
    backend_for(lab).read(lab.prefix)

While a store is bound, `Inventory.run` and `Inventory.apply` realise every
change in the kernel before the store commits it (see `realise`). Bringing a
lab up or down, its status and its listing live in `vmknet.lab.lifecycle`
(imported by the CLI; not here, since it imports the inventory, which
imports this package).
"""

from .binding import LAB_KEY, Lab, backend_for, bound_lab, require_lab

__all__ = ["LAB_KEY", "Lab", "backend_for", "bound_lab", "require_lab"]
