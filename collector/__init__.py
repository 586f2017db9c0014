"""servelog: an exactly-once log pipeline for ML model serving pods on Kubernetes.

Layers (imports point downwards only):

- ``collector.cli`` / ``collector.app``: wiring and lifecycle.
- ``collector.sources``: where lines come from (kubelet files, the Kubernetes API).
- ``collector.transforms``: pure decisions on lines (CRI parsing, grouping, enrichment, identity).
- ``collector.pipeline``: batching, ordered acknowledgement, checkpoints.
- ``collector.sinks``: where documents go (OpenSearch, stdout).
- ``collector.kube``: the pod metadata watch (the only user of the ``kubernetes`` client).
- ``collector.setup``: index templates, ISM and Dashboards saved objects.
- ``collector.query`` / ``collector.notebook``: reading back (``status``, ``history``, ``logs``; ``import servelog``),
  over ``collector.deployment``: a deployment's state and history, decided purely.
"""

__version__ = "0.1.0"
