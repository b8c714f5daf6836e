package dev.taskgroup.examples.context;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.TaskGroup;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanId;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Scope;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The OpenTelemetry recipe against the real SDK: children's spans are the owner's span's. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class OpenTelemetryRecipeTest {
  private final InMemorySpanExporter exporter = InMemorySpanExporter.create();
  private final SdkTracerProvider provider =
      SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(exporter)).build();
  private final Tracer tracer = provider.get("recipe.otel");

  @AfterEach
  void shutDown() {
    provider.close();
  }

  /** Runs {@code group} inside a "request" span whose children each start and end a span. */
  @SuppressWarnings("try") // the scope is only closed
  private Span request(TaskGroup group, int children) throws InterruptedException {
    Span request = tracer.spanBuilder("request").startSpan();
    try (Scope ignored = request.makeCurrent()) {
      group.run(
          () -> {
            for (int i = 0; i < children; i++) {
              group.fork(() -> tracer.spanBuilder("child").startSpan().end());
            }
          });
    } finally {
      request.end();
    }
    return request;
  }

  private List<SpanData> childSpans() {
    return exporter.getFinishedSpanItems().stream()
        .filter(s -> s.getName().equals("child"))
        .toList();
  }

  @Test
  void spansStartedInChildrenAreChildrenOfTheOwnersSpan() throws Exception {
    TaskGroup group = TaskGroup.builder().contextPropagator(new OpenTelemetryPropagator()).build();
    Span request = request(group, 3);
    assertThat(childSpans())
        .hasSize(3)
        .allSatisfy(
            s -> {
              assertThat(s.getTraceId()).isEqualTo(request.getSpanContext().getTraceId());
              assertThat(s.getParentSpanId()).isEqualTo(request.getSpanContext().getSpanId());
            });
  }

  @Test
  void withoutThePropagatorChildrenStartNewTraces() throws Exception {
    Span request = request(TaskGroup.create(), 2);
    assertThat(childSpans())
        .hasSize(2)
        .allSatisfy(
            s -> {
              assertThat(s.getParentSpanId()).isEqualTo(SpanId.getInvalid());
              assertThat(s.getTraceId()).isNotEqualTo(request.getSpanContext().getTraceId());
            });
  }

  @Test
  void theChildsContextIsNotLeftCurrentOnItsThreadAfterTheWork() throws Exception {
    TaskGroup group =
        TaskGroup.builder()
            .contextPropagator(new OpenTelemetryPropagator())
            .contextPropagator(
                work ->
                    () -> {
                      work.run();
                      // runs outermost, after the OpenTelemetry scope was closed
                      tracer.spanBuilder("after").startSpan().end();
                    })
            .build();
    request(group, 1);
    SpanData after =
        exporter.getFinishedSpanItems().stream()
            .filter(s -> s.getName().equals("after"))
            .findFirst()
            .orElseThrow();
    assertThat(after.getParentSpanId()).isEqualTo(SpanId.getInvalid());
  }
}
