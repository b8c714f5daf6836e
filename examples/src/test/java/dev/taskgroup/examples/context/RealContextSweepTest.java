package dev.taskgroup.examples.context;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import dev.taskgroup.CancelScope;
import dev.taskgroup.ContextPropagator;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import dev.taskgroup.TaskGroupException;
import io.opentelemetry.api.baggage.Baggage;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.ContextKey;
import io.opentelemetry.context.Scope;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.io.File;
import java.lang.ref.WeakReference;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * An adversarial sweep of context propagation with the real libraries: the SLF4J MDC through
 * logback, the OpenTelemetry SDK (spans exported to its in-memory exporter), {@code ScopedValue}
 * (JDK 25+, reflectively: the tests compile for Java 21) and inheritable thread locals. It checks
 * what {@link ContextPropagator}'s javadoc promises: the forking thread's context, as it was when
 * it forked, reaches every kind of child (fork, grandchild, {@code start}, {@code invokeAll},
 * {@code invokeAny}, {@code onCancel} / {@code closeOnCancel} actions, also when a deadline fires
 * them); nothing leaks back to the owner, siblings or the thread's own earlier context, whatever
 * the child's outcome; the propagators' code has ended when {@code run} returns; and, for
 * inheritable thread locals, that "a child's thread starts with ... its inheritable thread locals
 * (as {@code Thread.ofVirtual()} gives)", and that the library's own long-lived threads keep none
 * of a caller's (the JDK's rule for its system threads, {@code jdk.internal.misc.InnocuousThread},
 * closest).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class RealContextSweepTest {
  private static final Logger LOG = (Logger) LoggerFactory.getLogger("recipe.sweep");
  private static final ContextKey<String> KEY = ContextKey.named("sweep-key");

  /** Each event as "message {mdc}", read from the MDC on the thread that logged it. */
  private final Queue<String> lines = new ConcurrentLinkedQueue<>();

  private final AppenderBase<ILoggingEvent> appender =
      new AppenderBase<>() {
        @Override
        protected void append(ILoggingEvent e) {
          lines.add(e.getFormattedMessage() + " " + new TreeMap<>(e.getMDCPropertyMap()));
        }
      };

  private final InMemorySpanExporter exporter = InMemorySpanExporter.create();
  private final SdkTracerProvider provider =
      SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(exporter)).build();
  private final Tracer tracer = provider.get("recipe.sweep");

  @BeforeEach
  void attach() {
    appender.setContext(LOG.getLoggerContext());
    appender.start();
    LOG.addAppender(appender);
    MDC.clear();
  }

  @AfterEach
  void detach() {
    LOG.detachAppender(appender);
    appender.stop();
    provider.close();
    MDC.clear();
  }

  private static TaskGroup.Builder both() {
    return TaskGroup.builder()
        .contextPropagator(new MdcPropagator())
        .contextPropagator(new OpenTelemetryPropagator());
  }

  private SpanData span(String name) {
    return exporter.getFinishedSpanItems().stream()
        .filter(s -> s.getName().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no span " + name + " in " + names()));
  }

  private List<String> names() {
    return exporter.getFinishedSpanItems().stream().map(SpanData::getName).toList();
  }

  private void endedSpan(String name) {
    tracer.spanBuilder(name).startSpan().end();
  }

  // ---- every kind of child ----------------------------------------------------------------------

  /**
   * ContextPropagator: "Children made by fork, start, invokeAll and invokeAny are wrapped ..., and
   * so are CancelScope#onCancel actions ... on [the registering] thread". With the real logback MDC
   * and OpenTelemetry SDK: every log line carries the MDC of the thread that forked (or
   * registered), and every span is a child of the span current there. The action is fired by the
   * owner's cancel(): it runs in the registrant's context, not the canceller's. (Trio's contextvars
   * follow tasks the same way: trio/_tests/test_contextvars.py, closest.)
   */
  @RepeatedTest(5)
  @SuppressWarnings("try")
  void theForkersMdcAndSpanReachEveryKindOfChild() throws Exception {
    MDC.put("requestId", "r-1");
    Span request = tracer.spanBuilder("request").startSpan();
    TaskGroup group = both().build();
    CountDownLatch registered = new CountDownLatch(1);
    try (Scope ignored = request.makeCurrent()) {
      group.run(
          () -> {
            group.fork(
                () -> {
                  MDC.put("in", "child");
                  Span child = tracer.spanBuilder("child").startSpan();
                  try (Scope s = child.makeCurrent()) {
                    LOG.info("child");
                    group.fork(
                        () -> {
                          LOG.info("grandchild");
                          endedSpan("grandchild");
                        });
                    TaskGroup.invokeAll(
                        List.<Callable<Void>>of(
                            () -> {
                              LOG.info("invokeAll");
                              endedSpan("invokeAll");
                              return null;
                            }));
                    MDC.put("in", "registrant");
                    try (var hook =
                        CancelScope.onCancel(
                            () -> {
                              LOG.info("action");
                              endedSpan("action");
                            })) {
                      registered.countDown();
                      new CountDownLatch(1).await(); // until the group is cancelled
                    }
                  } finally {
                    child.end();
                  }
                });
            String started =
                group.start(
                    signal -> {
                      LOG.info("start child");
                      endedSpan("start");
                      signal.started("up");
                    });
            assertThat(started).isEqualTo("up");
            String any =
                TaskGroup.invokeAny(
                    List.of(
                        () -> {
                          LOG.info("invokeAny");
                          endedSpan("invokeAny");
                          return "any";
                        }));
            assertThat(any).isEqualTo("any");
            registered.await();
            MDC.put("requestId", "the canceller's");
            group.cancel();
          });
    } finally {
      request.end();
    }
    assertThat(lines)
        .containsExactlyInAnyOrder(
            "child {in=child, requestId=r-1}",
            "grandchild {in=child, requestId=r-1}",
            "invokeAll {in=child, requestId=r-1}",
            "action {in=registrant, requestId=r-1}",
            "start child {requestId=r-1}",
            "invokeAny {requestId=r-1}");
    String childSpan = span("child").getSpanId();
    String requestSpan = request.getSpanContext().getSpanId();
    assertThat(span("child").getParentSpanId()).isEqualTo(requestSpan);
    assertThat(span("grandchild").getParentSpanId()).isEqualTo(childSpan);
    assertThat(span("invokeAll").getParentSpanId()).isEqualTo(childSpan);
    assertThat(span("action").getParentSpanId()).isEqualTo(childSpan);
    assertThat(span("start").getParentSpanId()).isEqualTo(requestSpan);
    assertThat(span("invokeAny").getParentSpanId()).isEqualTo(requestSpan);
    assertThat(exporter.getFinishedSpanItems())
        .allSatisfy(
            s -> assertThat(s.getTraceId()).isEqualTo(request.getSpanContext().getTraceId()));
    assertThat(MDC.getCopyOfContextMap()).isEqualTo(Map.of("requestId", "the canceller's"));
    assertThat(Span.current()).isSameAs(Span.getInvalid());
  }

  /**
   * ContextPropagator: wrap "captures the calling thread's context" and "is called on the forking
   * thread before the child's thread exists". So the child sees the MDC, the span and the baggage
   * of the moment of the fork, though the forking thread changes all three before the child reads
   * them.
   */
  @RepeatedTest(20)
  @SuppressWarnings("try")
  void theContextIsCapturedAtTheForkNotWhenTheChildRuns() throws Exception {
    TaskGroup group = both().build();
    Queue<String> seen = new ConcurrentLinkedQueue<>();
    group.run(
        () -> {
          CountDownLatch changed = new CountDownLatch(1);
          MDC.put("requestId", "at-fork");
          Span atFork = tracer.spanBuilder("at-fork").startSpan();
          Task<Void> child;
          try (Scope s = atFork.makeCurrent();
              Scope b = Baggage.builder().put("user", "alice").build().makeCurrent()) {
            child =
                group.fork(
                    () -> {
                      changed.await();
                      seen.add(MDC.get("requestId"));
                      seen.add(Baggage.current().getEntryValue("user"));
                      seen.add(Span.current().getSpanContext().getSpanId());
                    });
          } finally {
            atFork.end();
          }
          MDC.put("requestId", "after-fork");
          Span later = tracer.spanBuilder("later").startSpan();
          try (Scope s = later.makeCurrent();
              Scope b = Baggage.builder().put("user", "mallory").build().makeCurrent()) {
            changed.countDown();
            child.get();
          } finally {
            later.end();
          }
          seen.add(MDC.get("requestId"));
        });
    assertThat(seen).containsExactly("at-fork", "alice", span("at-fork").getSpanId(), "after-fork");
  }

  // ---- nothing leaks back -----------------------------------------------------------------------

  enum Outcome {
    SUCCEEDS,
    THROWS,
    IS_CANCELLED,
    OUTER_PROPAGATOR_THROWS_AFTER
  }

  /**
   * ContextPropagator's recipes: the MDC recipe restores "its thread's MDC ... when the work ends",
   * the OpenTelemetry one "the previous one restored after". A thread factory that gives its
   * threads context of their own before they run the child (as a pooled worker would have) gets it
   * back after the child, whatever the child's outcome: success, failure, cancellation, or an outer
   * propagator failing after the work. The child's own MDC changes stay in the child.
   */
  @ParameterizedTest
  @EnumSource(Outcome.class)
  void aWorkerThreadsOwnContextIsRestoredAfterTheChild(Outcome outcome) throws Exception {
    Queue<String> after = new ConcurrentLinkedQueue<>();
    List<CompletableFuture<Void>> workersDone = new ArrayList<>();
    ThreadFactory workers =
        r -> {
          CompletableFuture<Void> done = new CompletableFuture<>();
          workersDone.add(done);
          return Thread.ofPlatform()
              .unstarted(
                  () -> {
                    MDC.put("worker", "own");
                    try (Scope s = Context.root().with(KEY, "worker's").makeCurrent()) {
                      r.run();
                      after.add(
                          new TreeMap<>(MDC.getCopyOfContextMap())
                              + " "
                              + Context.current().get(KEY));
                    } finally {
                      MDC.clear();
                      done.complete(null);
                    }
                  });
        };
    TaskGroup.Builder builder = both().threadFactory(workers);
    if (outcome == Outcome.OUTER_PROPAGATOR_THROWS_AFTER) {
      builder.contextPropagator(
          work ->
              () -> {
                work.run();
                throw new IllegalStateException("outer propagator after the work");
              });
    }
    TaskGroup group = builder.build();
    MDC.put("requestId", "r-2");
    CountDownLatch entered = new CountDownLatch(1);
    Throwable thrown = null;
    try (Scope s = Context.current().with(KEY, "owner's").makeCurrent()) {
      group.run(
          () -> {
            group.fork(
                () -> {
                  assertThat(Context.current().get(KEY)).isEqualTo("owner's");
                  assertThat(MDC.getCopyOfContextMap()).isEqualTo(Map.of("requestId", "r-2"));
                  MDC.put("leak", "from the child");
                  // (A scope made current and never closed would stay: OpenTelemetry ignores the
                  // close of a scope that is not the current one, so Context.wrap restores
                  // nothing.)
                  entered.countDown();
                  switch (outcome) {
                    case THROWS -> throw new IllegalStateException("child fails");
                    case IS_CANCELLED -> new CountDownLatch(1).await();
                    default -> {}
                  }
                });
            entered.await();
            if (outcome == Outcome.IS_CANCELLED) {
              group.cancel();
            }
          });
    } catch (TaskGroupException e) {
      thrown = e;
    }
    for (CompletableFuture<Void> done : workersDone) {
      done.get(10, TimeUnit.SECONDS);
    }
    assertThat(after).containsExactly("{worker=own} worker's");
    assertThat(thrown != null)
        .as("run threw")
        .isEqualTo(outcome == Outcome.THROWS || outcome == Outcome.OUTER_PROPAGATOR_THROWS_AFTER);
    assertThat(MDC.getCopyOfContextMap()).isEqualTo(Map.of("requestId", "r-2"));
    assertThat(Context.current().get(KEY)).isNull();
  }

  /**
   * A tracing propagator that starts a span per child (as OpenTelemetry's own executor
   * instrumentation does) ends it in the code it runs after the work. ContextPropagator: "when the
   * group's run returns, no propagator code of its children is still running"; so when run, or
   * invokeAny (a group's run too), returns or throws, the SDK has exported one span per child,
   * failed, cancelled or winning alike, each a child of the span of the forking thread.
   */
  @RepeatedTest(20)
  @SuppressWarnings("try")
  void everyChildsSpanIsExportedWhenRunReturnsWhateverItsOutcome() throws Exception {
    ContextPropagator spanPerChild =
        work -> {
          Context parent = Context.current();
          return () -> {
            Span span = tracer.spanBuilder("task").setParent(parent).startSpan();
            try (Scope s = span.makeCurrent()) {
              work.run();
            } finally {
              span.end();
            }
          };
        };
    Span request = tracer.spanBuilder("request").startSpan();
    try (Scope ignored = request.makeCurrent()) {
      TaskGroup group = TaskGroup.builder().contextPropagator(spanPerChild).build();
      CountDownLatch allBlocked = new CountDownLatch(6);
      assertThatThrownBy(
              () ->
                  group.run(
                      () -> {
                        for (int i = 0; i < 6; i++) {
                          group.fork(
                              () -> {
                                allBlocked.countDown();
                                new CountDownLatch(1).await();
                              });
                        }
                        allBlocked.await();
                        group.fork(
                            () -> {
                              throw new IllegalStateException("fails");
                            });
                      }))
          .isInstanceOf(TaskGroupException.class);
      assertThat(exporter.getFinishedSpanItems()).hasSize(7);
      String winner =
          TaskGroup.invokeAny(
              List.of(
                  () -> {
                    new CountDownLatch(1).await();
                    return "loser";
                  },
                  () -> "winner",
                  () -> {
                    throw new IllegalStateException("fails too");
                  }));
      assertThat(winner).isEqualTo("winner");
      // invokeAny applies the propagators of the innermost group around the caller: none here.
      assertThat(exporter.getFinishedSpanItems()).hasSize(7);
      TaskGroup outer = TaskGroup.builder().contextPropagator(spanPerChild).build();
      outer.run(
          () ->
              assertThat(
                      TaskGroup.invokeAny(
                          List.<Callable<String>>of(
                              () -> {
                                new CountDownLatch(1).await();
                                return "loser";
                              },
                              () -> "winner")))
                  .isEqualTo("winner"));
      assertThat(exporter.getFinishedSpanItems()).hasSize(9);
    } finally {
      request.end();
    }
    assertThat(exporter.getFinishedSpanItems().stream().filter(s -> s.getName().equals("task")))
        .hasSize(9)
        .allSatisfy(
            s -> assertThat(s.getParentSpanId()).isEqualTo(request.getSpanContext().getSpanId()));
  }

  // ---- many forkers at once
  // ----------------------------------------------------------------------

  /**
   * Several children fork grandchildren into the shared group at random moments, each changing its
   * MDC and current span between forks: every grandchild sees exactly the context its forker had at
   * its fork, never a sibling's (PropagationStressTest does this with a plain thread local; here
   * with logback's MDC adapter and the OpenTelemetry context storage). Seeded; the seed is printed.
   */
  @RepeatedTest(20)
  @SuppressWarnings("try")
  void concurrentForkersContextsNeverCross() throws Exception {
    long seed = System.nanoTime();
    System.out.println("concurrentForkersContextsNeverCross seed=" + seed);
    Random random = new Random(seed);
    int children = 4 + random.nextInt(5);
    int perChild = 5 + random.nextInt(10);
    TaskGroup.Builder builder = both();
    if (random.nextBoolean()) {
      builder.maxConcurrency(3); // grandchildren then wait for a place in their own thread
    }
    TaskGroup group = builder.build();
    Queue<String> mismatches = new ConcurrentLinkedQueue<>();
    AtomicInteger checked = new AtomicInteger();
    long[] childSeeds = new long[children];
    for (int i = 0; i < children; i++) {
      childSeeds[i] = random.nextLong();
    }
    group.run(
        () -> {
          for (int i = 0; i < children; i++) {
            int c = i;
            group.fork(
                () -> {
                  Random r = new Random(childSeeds[c]);
                  for (int j = 0; j < perChild; j++) {
                    String id = "c" + c + "-g" + j;
                    MDC.put("requestId", id);
                    Span span = tracer.spanBuilder(id).startSpan();
                    try (Scope s = span.makeCurrent()) {
                      String expectedSpan = span.getSpanContext().getSpanId();
                      group.fork(
                          () -> {
                            if (r.nextInt(4) == 0) {
                              Thread.yield();
                            }
                            String mdc = MDC.get("requestId");
                            String sid = Span.current().getSpanContext().getSpanId();
                            if (!id.equals(mdc) || !expectedSpan.equals(sid)) {
                              mismatches.add(id + " saw " + mdc + " / " + sid);
                            }
                            checked.incrementAndGet();
                          });
                    } finally {
                      span.end();
                    }
                    MDC.put("requestId", "between forks of c" + c);
                    if (r.nextBoolean()) {
                      Thread.yield();
                    }
                  }
                });
          }
        });
    assertThat(mismatches).as("seed %d", seed).isEmpty();
    assertThat(checked.get()).isEqualTo(children * perChild);
  }

  // ---- cancel actions
  // -----------------------------------------------------------------------------

  /**
   * CancelScope.onCancel / closeOnCancel: the action "runs inside the ContextPropagators ... which
   * wrap it here, on the calling thread". When the group's deadline (Builder.timeout) fires them,
   * from the library's timer rather than from a thread of the request, the action still logs with
   * the registrant's MDC, and its spans are children of the registrant's span. The group waits for
   * the actions: their log lines and spans are there when run returns.
   */
  @RepeatedTest(10)
  @SuppressWarnings("try")
  void actionsFiredByADeadlineRunInTheRegistrantsContext() throws Exception {
    TaskGroup group = both().timeout(Duration.ofMillis(20)).build();
    MDC.put("requestId", "r-3");
    group.run(
        () ->
            group.fork(
                () -> {
                  MDC.put("step", "query");
                  Span query = tracer.spanBuilder("query").startSpan();
                  try (Scope s = query.makeCurrent();
                      var action =
                          CancelScope.onCancel(
                              () -> {
                                LOG.info("statement.cancel()");
                                endedSpan("cancel action");
                              });
                      var close =
                          CancelScope.closeOnCancel(
                              () -> {
                                LOG.info("socket.close()");
                                endedSpan("close action");
                              })) {
                    MDC.put("step", "after registering");
                    new CountDownLatch(1).await(); // until the deadline
                  } finally {
                    query.end();
                  }
                }));
    assertThat(group.cancelCaught()).isTrue();
    assertThat(lines)
        .containsExactlyInAnyOrder(
            "statement.cancel() {requestId=r-3, step=query}",
            "socket.close() {requestId=r-3, step=query}");
    String query = span("query").getSpanId();
    assertThat(span("cancel action").getParentSpanId()).isEqualTo(query);
    assertThat(span("close action").getParentSpanId()).isEqualTo(query);
  }

  /**
   * CancelScope.onCancel: each action runs "soon after the calling thread's innermost scope becomes
   * effectively cancelled while the registration is open". A query that registers two actions (the
   * usual statement.cancel() and closing its connection, each logging with the registrant's MDC)
   * and is cancelled while both are open gets both run, though the first to fire interrupts the
   * thread, which then closes its registrations.
   */
  @RepeatedTest(50)
  @SuppressWarnings("try")
  void everyActionOpenWhenTheScopeIsCancelledRuns() throws Exception {
    TaskGroup group = both().build();
    MDC.put("requestId", "r-4");
    CountDownLatch registered = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork(
              () -> {
                try (var first = CancelScope.onCancel(() -> LOG.info("statement.cancel()"));
                    var second = CancelScope.closeOnCancel(() -> LOG.info("connection.close()"))) {
                  registered.countDown();
                  new CountDownLatch(1).await(); // until cancelled
                }
              });
          registered.await();
          group.cancel();
        });
    assertThat(lines)
        .containsExactlyInAnyOrder(
            "statement.cancel() {requestId=r-4}", "connection.close() {requestId=r-4}");
  }

  /**
   * The same promise when the registrant sees the cancellation by itself (it polls
   * CancelScope.isCancelled() in a cooperative scope, where the library never interrupts it) and
   * closes its registration at once: the scope was cancelled while the registration was open, so
   * the action runs, in the registrant's MDC, and has ended when close returns.
   */
  @RepeatedTest(50)
  void anActionOpenWhenAPollingThreadSeesTheCancelRuns() throws Exception {
    TaskGroup group = both().build();
    MDC.put("requestId", "r-5");
    CountDownLatch registered = new CountDownLatch(1);
    Queue<String> afterClose = new ConcurrentLinkedQueue<>();
    group.run(
        () -> {
          group.fork(
              () ->
                  CancelScope.cooperative()
                      .run(
                          () -> {
                            CancelScope.Registration r =
                                CancelScope.onCancel(() -> LOG.info("statement.cancel()"));
                            registered.countDown();
                            while (!CancelScope.isCancelled()) {
                              Thread.onSpinWait();
                            }
                            r.close();
                            afterClose.addAll(lines);
                          }));
          registered.await();
          group.cancel();
        });
    assertThat(afterClose).containsExactly("statement.cancel() {requestId=r-5}");
  }

  // ---- inheritable thread locals
  // ------------------------------------------------------------------

  private static final InheritableThreadLocal<String> INHERITED = new InheritableThreadLocal<>();

  /**
   * ContextPropagator: "A child's thread starts with nothing of its forking thread's context but
   * its inheritable thread locals (as Thread.ofVirtual() gives; the group's ThreadFactory is called
   * on the forking thread)". So, with no propagator, the default virtual threads get the value the
   * forking thread had at the fork (a grandchild: its forking child's), for fork, start and
   * invokeAll alike; and a platform-thread factory the same.
   */
  @RepeatedTest(5)
  void inheritableThreadLocalsReachChildrenAsTheyWereAtTheFork() throws Exception {
    for (ThreadFactory factory :
        new ThreadFactory[] {null, Thread.ofPlatform().factory(), Thread.ofVirtual().factory()}) {
      TaskGroup.Builder builder = TaskGroup.builder();
      if (factory != null) {
        builder.threadFactory(factory);
      }
      TaskGroup group = builder.build();
      Queue<String> seen = new ConcurrentLinkedQueue<>();
      INHERITED.set("at fork");
      try {
        group.run(
            () -> {
              CountDownLatch changed = new CountDownLatch(1);
              Task<Void> child =
                  group.fork(
                      () -> {
                        changed.await();
                        seen.add("child " + INHERITED.get());
                        INHERITED.set("child's");
                        group.fork(() -> seen.add("grandchild " + INHERITED.get())).get();
                      });
              INHERITED.set("after fork");
              changed.countDown();
              child.get();
              group.start(
                  signal -> {
                    seen.add("start " + INHERITED.get());
                    signal.started();
                  });
              seen.add(
                  TaskGroup.invokeAll(
                          List.<Callable<String>>of(() -> "invokeAll " + INHERITED.get()))
                      .get(0));
            });
      } finally {
        INHERITED.remove();
      }
      assertThat(seen)
          .as("factory %s", factory)
          .containsExactly(
              "child at fork", "grandchild child's", "start after fork", "invokeAll after fork");
    }
  }

  /**
   * The library's own long-lived threads (the deadline timer, the interrupt re-delivery watcher)
   * are made on demand by whichever application thread first needs them. They must not keep that
   * thread's inheritable thread locals (a request, a user) nor its context class loader (a web
   * application's) for the life of the JVM: the JDK makes its own such threads with
   * InnocuousThread, which inherits neither (closest; ForkJoinPool's common pool likewise). Run in
   * a fresh JVM, where the first cancellation delivered starts the watcher and the first group with
   * a timeout the timer, both from the main thread.
   */
  @Test
  void theLibrarysLongLivedThreadsKeepNoCallersContext() throws Exception {
    String java =
        System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
    Process p =
        new ProcessBuilder(
                java, "-cp", System.getProperty("java.class.path"), FirstCaller.class.getName())
            .redirectErrorStream(true)
            .start();
    assertThat(p.waitFor(20, TimeUnit.SECONDS)).as("the fresh JVM ended").isTrue();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(out.lines()).contains("request collected", "class loader collected");
  }

  /** The fresh JVM of {@link #theLibrarysLongLivedThreadsKeepNoCallersContext}. */
  static final class FirstCaller {
    static final InheritableThreadLocal<Object> REQUEST = new InheritableThreadLocal<>();

    public static void main(String[] args) throws Exception {
      Object request = new byte[1 << 20];
      WeakReference<Object> requestRef = new WeakReference<>(request);
      ClassLoader webapp = new URLClassLoader(new URL[0], FirstCaller.class.getClassLoader());
      WeakReference<ClassLoader> loaderRef = new WeakReference<>(webapp);
      Thread me = Thread.currentThread();
      ClassLoader saved = me.getContextClassLoader();
      REQUEST.set(request);
      me.setContextClassLoader(webapp);
      try {
        // A cancel delivered from this thread: the first delivery starts the re-delivery watcher.
        TaskGroup cancelled = TaskGroup.create();
        cancelled.run(
            () -> {
              CountDownLatch running = new CountDownLatch(1);
              cancelled.fork(
                  () -> {
                    running.countDown();
                    new CountDownLatch(1).await();
                  });
              running.await();
              cancelled.cancel();
            });
        // The first deadline starts the timer.
        TaskGroup group = TaskGroup.builder().timeout(Duration.ofMillis(10)).build();
        group.run(() -> group.fork(() -> new CountDownLatch(1).await()));
        if (!group.cancelCaught()) {
          throw new AssertionError("the deadline did not fire");
        }
      } finally {
        REQUEST.remove();
        me.setContextClassLoader(saved);
      }
      request = null;
      webapp = null;
      for (int i = 0; i < 100 && (requestRef.get() != null || loaderRef.get() != null); i++) {
        System.gc();
        Thread.sleep(10); // lets the GC and reference processing run; nothing waits on it
      }
      System.out.println(requestRef.get() == null ? "request collected" : "request retained");
      System.out.println(
          loaderRef.get() == null ? "class loader collected" : "class loader retained");
    }
  }

  // ---- ScopedValue (JDK 25+) --------------------------------------------------------------------

  /**
   * The ScopedValue recipe: a listed value bound on the forking thread is bound in a start() child,
   * in invokeAll tasks forked from a child, and in an onCancel action registered by a child; the
   * owner's binding is unchanged after. Reflective: the tests compile for Java 21, where
   * ScopedValue is a preview API.
   */
  @Test
  @SuppressWarnings("try")
  void scopedValueBindingsReachStartInvokeAllAndCancelActions() throws Exception {
    int jdk = Runtime.version().feature();
    assumeTrue(jdk >= 25, "ScopedValue is final only from JDK 25; JDK " + jdk);
    Class<?> sv = Class.forName("java.lang.ScopedValue");
    Object value = sv.getMethod("newInstance").invoke(null);
    Method orElse = sv.getMethod("orElse", Object.class);
    Object array = java.lang.reflect.Array.newInstance(sv, 1);
    java.lang.reflect.Array.set(array, 0, value);
    ContextPropagator propagator =
        (ContextPropagator)
            Class.forName("dev.taskgroup.examples.context.ScopedValuePropagator")
                .getConstructor(array.getClass())
                .newInstance((Object) array);
    Callable<String> read = () -> (String) orElse.invoke(value, "unbound");
    Object carrier = sv.getMethod("where", sv, Object.class).invoke(null, value, "r-9");
    Method callWhere =
        carrier.getClass().getMethod("call", Class.forName("java.lang.ScopedValue$CallableOp"));
    Queue<String> seen = new ConcurrentLinkedQueue<>();
    TaskGroup group = TaskGroup.builder().contextPropagator(propagator).build();
    Object op =
        java.lang.reflect.Proxy.newProxyInstance(
            getClass().getClassLoader(),
            new Class<?>[] {Class.forName("java.lang.ScopedValue$CallableOp")},
            (proxy, m, a) -> {
              if (!m.getName().equals("call")) {
                throw new UnsupportedOperationException(m.getName());
              }
              group.run(
                  () -> {
                    seen.add("start " + group.<String>start(signal -> signal.started(read.call())));
                    group.fork(
                        () -> {
                          seen.add("invokeAll " + TaskGroup.invokeAll(List.of(read)).get(0));
                          try (var hook =
                              CancelScope.onCancel(() -> seen.add("action " + read.call()))) {
                            group.cancel();
                            CancelScope.checkpoint();
                          }
                        });
                  });
              seen.add("owner " + read.call());
              return null;
            });
    callWhere.invoke(carrier, op);
    seen.add("outside " + read.call());
    assertThat(seen)
        .containsExactly(
            "start r-9", "invokeAll r-9", "action r-9", "owner r-9", "outside unbound");
  }
}
