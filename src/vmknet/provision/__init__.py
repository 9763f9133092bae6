"""VM files on lab datastores and the provisioning operations that move them (NFC).

    from vmknet.provision import files, snapshots, cold, live
    files.create(dc, lab, "web01", "esx01", disk=64 << 20, stores=stores)   # vmx + sparse vmdk
    cold.migrate(dc, lab, "web01", "esx02", datastore="ds2")   # powered off: files over NFC
    cold.clone(dc, lab, "web01", "esx03", "web02")
    snapshots.create(lab, "web01", "s1"); snapshots.revert(lab, "web01", "s1")
    live.vmotion(dc, lab, "web01", "esx02", datastore="ds2")  # disks: NFC, memory: vMotion

Every cross-host byte goes through nfc.copy_file over the provisioning adapters (PATH-2,
EX-4); see docs/provisioning.md.
"""
