"""The data plane: realise the inventory in the kernel (Linux namespaces) or its in-memory twin."""
