"""servelog's own exception tree; library errors are chained as causes, never leaked raw.

    CollectorError
    ├── ConfigError            settings invalid (carries every problem at once)
    ├── SinkError              the OpenSearch boundary (collector.sinks.opensearch.client)
    │   ├── SinkUnavailable    connection refused/reset, timeout, 5xx: worth retrying
    │   └── SinkRejected       a 4xx answer for the whole request (.status)
    │       └── SinkAuthError  401/403: retrying will not help
    ├── KubeError              the Kubernetes boundary (collector.kube.client)
    │   ├── KubeUnavailable    connection problems, 5xx, 429: worth retrying
    │   └── KubeRejected       other 4xx (.status); 410 Gone is KubeGone
    │       └── KubeGone       the watch's resourceVersion expired: relist
    └── SetupError             installing templates / saved objects failed (clear message)

Client libraries change their exception types between releases; callers here only ever catch
these, so a library upgrade touches one module per boundary.
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error servelog raises on purpose."""


class ConfigError(CollectorError):
    """Settings failed validation. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


class SinkError(CollectorError):
    """A failure at the OpenSearch boundary."""


class SinkUnavailable(SinkError):
    """OpenSearch could not be reached or answered 5xx; the request may be retried."""


class SinkRejected(SinkError):
    """OpenSearch answered the whole request with a 4xx status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"OpenSearch refused the request with {status}: {message}")


class SinkAuthError(SinkRejected):
    """Credentials were refused (401) or lack a permission (403)."""


class KubeError(CollectorError):
    """A failure at the Kubernetes API boundary."""


class KubeUnavailable(KubeError):
    """The API server could not be reached, timed out, or answered 5xx/429."""


class KubeRejected(KubeError):
    """The API server refused the request with a 4xx status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"Kubernetes API refused the request with {status}: {message}")


class KubeGone(KubeRejected):
    """410 Gone: the resourceVersion is too old; list again."""

    def __init__(self, message: str = "resource version too old") -> None:
        super().__init__(410, message)


class SetupError(CollectorError):
    """Installing index templates, ISM policies or saved objects failed."""
