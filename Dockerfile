# servelog collector image. Build: docker build -t servelog .
# Dependency versions are pinned by requirements.lock (pip constraints; the versions CI tested).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY collector ./collector
RUN python -m venv /opt/servelog \
 && /opt/servelog/bin/pip install --no-cache-dir --constraint requirements.lock .

FROM python:3.11-slim-bookworm
COPY --from=build /opt/servelog /opt/servelog
COPY index_templates /usr/share/servelog/index_templates
COPY dashboards /usr/share/servelog/dashboards
ENV PATH=/opt/servelog/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SERVELOG_ASSETS_DIR=/usr/share/servelog
# Non-root by default (compose, the setup Job). The DaemonSet overrides to uid 0 without any
# capability, because the kubelet writes pod logs root-owned with mode 0640 (see deploy/README.md).
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin servelog \
 && mkdir -p /var/lib/servelog /demo /state \
 && chown 10001 /var/lib/servelog /demo /state
USER 10001
EXPOSE 9880
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os;urllib.request.urlopen('http://'+os.environ.get('SERVELOG_TELEMETRY__LISTEN','127.0.0.1:9880')+'/healthz',timeout=2)" || exit 1
ENTRYPOINT ["servelog"]
CMD ["run"]
