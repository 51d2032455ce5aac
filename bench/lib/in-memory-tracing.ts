// An SDK tracer provider registered globally with an in-memory exporter, for tests and benchmarks that read the
// spans back; close() shuts it down and removes the global tracer, propagator and context manager again.
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-node';

export interface InMemoryTracing {
  readonly exporter: InMemorySpanExporter;
  close(): Promise<void>;
}

/** `processor` wraps the exporter (default: a SimpleSpanProcessor, so finished spans are readable at once). */
export function registerInMemoryTracing(processor: (exporter: InMemorySpanExporter) => SpanProcessor = (e) => new SimpleSpanProcessor(e)): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [processor(exporter)] });
  provider.register();
  return {
    exporter,
    async close() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
