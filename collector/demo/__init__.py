"""``servelog demo``: realistic KServe pod logs (and pod metadata) for a local, cluster-free demo."""
