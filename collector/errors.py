"""servelog's own exception tree; library errors are chained as causes, never leaked raw.

    CollectorError
    ├── ConfigError            settings invalid (carries every problem at once)
    ├── SinkError              the OpenSearch boundary (collector.sinks.opensearch.client)
    │   ├── SinkUnavailable    no answer (refused, reset, DNS, TLS, timeout: .kind) or a 5xx
    │   └── SinkRejected       a 4xx answer for the whole request (.status, .error_type)
    │       ├── SinkAuthError  401/403: credentials refused or a permission missing
    │       └── SinkBadResponse an answer that is not OpenSearch's (HTML, non-JSON, not a bulk response)
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
    """A failure at the OpenSearch boundary.

    ``status`` is the HTTP status (0: no answer), ``error_type`` OpenSearch's ``error.type`` when
    the body was OpenSearch's JSON error, ``kind`` how a request without answer failed
    (``refused``, ``tls``, ``timeout``) and ``detail`` the answer's own words, redacted and short.
    Whether and how to retry is decided from these by
    :func:`collector.sinks.opensearch.retry.request_verdict`, never here.
    """

    status: int = 0
    error_type: str = ""
    kind: str = ""
    detail: str = ""


class SinkUnavailable(SinkError):
    """OpenSearch could not be reached or answered 5xx; the request may be retried."""

    def __init__(self, message: str, *, status: int = 0, kind: str = "", error_type: str = "", detail: str = "") -> None:
        self.status, self.kind, self.error_type, self.detail = status, kind, error_type, detail or message
        super().__init__(message)


class SinkRejected(SinkError):
    """OpenSearch answered the whole request with a 4xx status."""

    def __init__(self, status: int, message: str, *, error_type: str = "") -> None:
        self.status = status
        self.error_type = error_type
        self.detail = message
        super().__init__(f"OpenSearch refused the request with {status}: {message}")


class SinkAuthError(SinkRejected):
    """Credentials were refused (401) or lack a permission (403)."""


class SinkBadResponse(SinkRejected):
    """The answer is not OpenSearch's: a proxy's HTML page, a non-JSON body, a 200 that is not a bulk response."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.error_type, self.detail = status, "", message
        SinkError.__init__(self, f"the answer is not OpenSearch's ({status}): {message}")


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
