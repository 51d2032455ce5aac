"""OpenTelemetry for a worker (the ``[otel]`` extra): export spans over OTLP/HTTP when the standard environment
asks for it. The per-request span itself is in server.py; it needs only opentelemetry-api."""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional


def export_requested() -> bool:
    """The standard variables: an OTLP endpoint is set, and neither the SDK nor the traces exporter is turned off."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def start_export(default_service_name: str, log: logging.Logger) -> Optional[Callable[[], None]]:
    """Installs a global tracer provider that batches spans to the OTLP/HTTP exporter (which reads the OTEL_EXPORTER_OTLP_*
    variables itself). Returns its shutdown (flushes what is buffered), or None when nothing was installed: export not
    requested, the [otel] extra missing, or the application already set up a provider of its own (kept as it is)."""
    if not export_requested():
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as err:
        log.warning({"event": "worker.tracing_unavailable", "error": str(err), "hint": "pip install 'physical-ai-worker[otel]'"})
        return None
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return None
    # OTEL_SERVICE_NAME wins over the default; Resource.create also reads OTEL_RESOURCE_ATTRIBUTES.
    service_name = os.environ.get("OTEL_SERVICE_NAME") or default_service_name
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info({"event": "worker.tracing", "service_name": service_name, "exporter": "otlp/http"})
    return provider.shutdown
