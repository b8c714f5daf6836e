package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.internal.clock.LibraryClock;
import dev.taskgroup.internal.clock.TimeSource;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import jdk.jfr.consumer.RecordingStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Timeout;

/**
 * An adversarial sweep of the diagnostics: level-triggered re-delivery of a swallowed cancellation
 * (Trio's rule that every checkpoint in a cancelled scope raises again, closest: trio's
 * test_cancel_scope_nesting / "cancel is level-triggered" in trio/_core/_tests/test_run.py), the
 * stuck warning through the {@code System.Logger} named {@code dev.taskgroup} (captured by a real
 * java.util.logging handler, the JDK's default backend), the JFR events read in-process from a
 * {@link Recording}'s dump (and with a {@link RecordingStream} where a test waits for an event: the
 * jdk.jfr conventions of OpenJDK's test/jdk/jdk/jfr tests), and what {@link TaskTree} says about
 * swallowers.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DiagnosticsSweepTest {
  /** The documented default re-delivery bound (dev.taskgroup.redeliveryMillis). */
  private static final long BOUND_MILLIS = Long.getLong("dev.taskgroup.redeliveryMillis", 20L);

  private final List<LogRecord> warnings = new CopyOnWriteArrayList<>();
  private final Logger jul = Logger.getLogger("dev.taskgroup");
  private final Handler capture =
      new Handler() {
        @Override
        public void publish(LogRecord r) {
          warnings.add(r);
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };
  private long thresholdBefore;

  @BeforeEach
  void setUp() throws Exception {
    Thread.interrupted();
    thresholdBefore = stuckThresholdMillis();
    jul.addHandler(capture);
  }

  @AfterEach
  void tearDown() throws Exception {
    jul.removeHandler(capture);
    setStuckThresholdMillis(thresholdBefore);
    Thread.interrupted();
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** The stuck warning's threshold is read once from a system property: tests set it directly. */
  private static void setStuckThresholdMillis(long millis) throws Exception {
    Method m =
        Class.forName("dev.taskgroup.internal.StuckWarning")
            .getDeclaredMethod("setThresholdMillis", long.class);
    m.setAccessible(true);
    m.invoke(null, millis);
  }

  private static long stuckThresholdMillis() throws Exception {
    Method m =
        Class.forName("dev.taskgroup.internal.StuckWarning").getDeclaredMethod("thresholdNanos");
    m.setAccessible(true);
    return TimeUnit.NANOSECONDS.toMillis((long) m.invoke(null));
  }

  /** Swallows every interrupt while blocking on {@code stop}, counting the swallowed ones. */
  private static void swallowUntil(CountDownLatch stop, AtomicInteger swallowed) {
    while (stop.getCount() > 0) {
      try {
        stop.await();
      } catch (InterruptedException e) {
        swallowed.incrementAndGet();
      }
    }
  }

  /** Waits (polling with a deadline: nothing signals it) until {@code ok} holds for the tree. */
  private static String awaitTree(java.util.function.Predicate<String> ok) {
    AtomicReference<String> last = new AtomicReference<>("");
    Probes.awaitTrue(
        "a tree matching the expectation; last:\n" + last,
        Duration.ofSeconds(20),
        () -> {
          String text = TaskTree.capture().format();
          last.set(text);
          return ok.test(text);
        });
    return last.get();
  }

  private static int redeliveriesOnLine(String tree, String linePrefixRegex) {
    Matcher m =
        Pattern.compile("(?m)^.*" + linePrefixRegex + ".*?(?: redeliveries=(\\d+))?(?: \\(.*)?$")
            .matcher(tree);
    assertThat(m.find()).as("a line %s in\n%s", linePrefixRegex, tree).isTrue();
    return m.group(1) == null ? 0 : Integer.parseInt(m.group(1));
  }

  // ---- TaskTree: the re-delivery count ---------------------------------------------------------

  /**
   * TaskTree's javadoc: a cancelled node shows "how many times the cancellation interrupt was
   * delivered again to its thread after being swallowed". A thread that swallowed in one cancelled
   * scope, left it, and is now in a second, unrelated cancelled scope where it swallowed nothing
   * must not show the first scope's count: the count is about the cancellation it is in.
   */
  @RepeatedTest(5)
  void redeliveryCountOfAnEarlierCancellationIsNotShownForALaterOne() throws Exception {
    Probes.onThread(
        Fixtures.ThreadKind.VIRTUAL,
        () -> {
          CancelScope first = CancelScope.create();
          AtomicInteger swallowed = new AtomicInteger();
          first.run(
              () -> {
                first.cancel("first");
                while (swallowed.get() < 3) { // swallow three deliveries, then leave quietly
                  try {
                    new CountDownLatch(1).await();
                  } catch (InterruptedException e) {
                    swallowed.incrementAndGet();
                  }
                }
              });
          assertThat(Thread.currentThread().isInterrupted()).isFalse();
          CancelScope second = CancelScope.create();
          second.run(
              () -> {
                second.cancel("second");
                // the interrupt is pending, nothing swallowed in this cancellation
                String tree = TaskTree.capture().format();
                String mine = "#" + Thread.currentThread().threadId() + " ";
                String line =
                    tree.lines()
                        .filter(l -> l.contains(mine) && l.contains("second"))
                        .findFirst()
                        .orElseThrow(() -> new AssertionError("no line for the scope in\n" + tree));
                assertThat(line).as(tree).doesNotContain("redeliveries=");
                CancelScope.checkpoint(); // let it end as cancelled
              });
          assertThat(second.cancelCaught()).isTrue();
        });
  }

  // ---- the library's clock and the ages it reports ---------------------------------------------

  /**
   * A test clock that moves only when told: the seam the test kit's VirtualClock uses
   * (LibraryClock.install), kept here because this module cannot depend on the test kit.
   */
  private static final class SteppedClock implements TimeSource {
    private final long baseNanos = LibraryClock.nanoTime();
    private final Instant baseInstant = LibraryClock.instant();
    private final AtomicLong now = new AtomicLong(baseNanos);

    @Override
    public long nanoTime() {
      return now.get();
    }

    @Override
    public Instant instant() {
      return baseInstant.plusNanos(now.get() - baseNanos);
    }

    @Override
    public void parkUntil(long deadlineNanos) {
      LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(1)); // callers re-check
    }

    void advance(Duration d) {
      now.addAndGet(d.toNanos());
      LibraryClock.fireDueDeadlines();
    }
  }

  /**
   * The DeadlineExpired event's lateness is "how long after the deadline the cancellation was
   * made", and deadlines run on the library's clock (VirtualClock's javadoc: every deadline reads
   * it while it is installed). A deadline of 1 s fired by moving the clock an hour on was made
   * about an hour late on that clock.
   */
  @RepeatedTest(2)
  void deadlineLatenessIsMeasuredOnTheClockTheDeadlineRunsOn() throws Exception {
    List<RecordedEvent> events = new CopyOnWriteArrayList<>();
    CountDownLatch seen = new CountDownLatch(1);
    try (RecordingStream rs = new RecordingStream()) {
      rs.enable("dev.taskgroup.DeadlineExpired");
      rs.onEvent(
          "dev.taskgroup.DeadlineExpired",
          e -> {
            events.add(e);
            seen.countDown();
          });
      rs.startAsync();
      SteppedClock clock = new SteppedClock();
      LibraryClock.install(clock);
      try {
        CountDownLatch entered = new CountDownLatch(1);
        AtomicBoolean cancelled = new AtomicBoolean();
        Thread t =
            Thread.ofVirtual()
                .start(
                    () -> {
                      try {
                        cancelled.set(
                            CancelScope.moveOnAfter(
                                    Duration.ofSeconds(1),
                                    () -> {
                                      entered.countDown();
                                      new CountDownLatch(1).await();
                                      return "not cancelled";
                                    })
                                == null);
                      } catch (InterruptedException e) {
                        throw new AssertionError(e);
                      }
                    });
        entered.await();
        clock.advance(Duration.ofHours(1));
        assertThat(t.join(Duration.ofSeconds(10))).isTrue();
        assertThat(cancelled).isTrue();
      } finally {
        LibraryClock.uninstall(clock);
      }
      assertThat(seen.await(20, TimeUnit.SECONDS)).as("DeadlineExpired recorded").isTrue();
    }
    assertThat(events.get(0).getDuration("lateness"))
        .as("lateness on the library's clock")
        .isGreaterThanOrEqualTo(Duration.ofMinutes(59));
  }

  /**
   * After a test clock was closed, the library's timeline goes on from the time it reached
   * (LibraryClock's overview): an hour ahead of System.nanoTime here. A deadline that expires after
   * that must still be reported with its real age: TaskTree's "N ms ago" grows as time passes, and
   * the stuck warning's "was cancelled N ms ago" is not negative.
   */
  @RepeatedTest(2)
  void ageOfAnExpiredDeadlineIsRightAfterATestClockWasClosed() throws Exception {
    SteppedClock clock = new SteppedClock();
    LibraryClock.install(clock);
    try {
      clock.advance(Duration.ofHours(1));
    } finally {
      LibraryClock.uninstall(clock);
    }
    setStuckThresholdMillis(300);
    CountDownLatch stop = new CountDownLatch(1);
    AtomicInteger swallowed = new AtomicInteger();
    TaskGroup group = TaskGroup.named("dl-after-clock");
    CountDownLatch started = new CountDownLatch(1); // a task cancelled before it starts never runs
    AtomicReference<String> treeLine = new AtomicReference<>();
    Thread releaser =
        Thread.ofVirtual()
            .start(
                () -> {
                  String tree = awaitTree(t -> t.contains("'dl-after-clock' cancelled"));
                  long seenAt = System.nanoTime();
                  Probes.awaitTrue(
                      "200 ms passed",
                      Duration.ofSeconds(5),
                      () -> System.nanoTime() - seenAt >= TimeUnit.MILLISECONDS.toNanos(200));
                  treeLine.set(
                      TaskTree.capture()
                          .format()
                          .lines()
                          .filter(l -> l.contains("'dl-after-clock'"))
                          .findFirst()
                          .orElse(tree));
                  Probes.awaitTrue(
                      "the stuck warning", Duration.ofSeconds(20), () -> !warnings.isEmpty());
                  stop.countDown();
                });
    group.run(
        () -> {
          group.fork(
              "dl-swallower",
              () -> {
                started.countDown();
                swallowUntil(stop, swallowed);
              });
          started.await();
          group.cancelScope().setTimeout(Duration.ofMillis(1));
        });
    releaser.join();
    Matcher m = Pattern.compile("\\(deadline expired, (\\d+) ms ago\\)").matcher(treeLine.get());
    assertThat(m.find()).as(treeLine.get()).isTrue();
    assertThat(Long.parseLong(m.group(1))).as(treeLine.get()).isGreaterThanOrEqualTo(200L);
    String warning = warnings.get(0).getMessage();
    assertThat(warning)
        .startsWith("group 'dl-after-clock' was cancelled ")
        .containsPattern(
            "^group 'dl-after-clock' was cancelled \\d+ ms ago \\(deadline expired\\)");
  }

  // ---- re-delivery: shields, cooperative scopes, leaving ---------------------------------------

  /**
   * A child that swallowed its cancellation and then entered a shield for cleanup: inside the
   * shield nothing is delivered (the watcher must drop it, the count must not grow), and on leaving
   * the shield, still in the cancelled group, the next blocking call throws at once (closest:
   * trio's test_cancel_shield_abort, where a shielded checkpoint is not cancelled and the first
   * checkpoint after the shield is).
   */
  @RepeatedTest(10)
  void swallowerInAShieldIsLeftAloneAndIsCancelledAgainOnLeavingIt() throws Exception {
    TaskGroup group = TaskGroup.named("shield-swallow");
    CountDownLatch shielded = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<String> inShield = new AtomicReference<>();
    AtomicReference<Throwable> afterShield = new AtomicReference<>();
    AtomicReference<Thread> child = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1); // a task cancelled before it starts never runs
    group.run(
        () -> {
          group.fork(
              "shield-child",
              () -> {
                child.set(Thread.currentThread());
                started.countDown();
                try {
                  new CountDownLatch(1).await();
                } catch (InterruptedException swallowed) {
                  // the first delivery, swallowed
                }
                CancelScope.shielded()
                    .run(
                        () -> {
                          shielded.countDown();
                          try {
                            release.await(); // must not be interrupted while shielded
                          } catch (InterruptedException e) {
                            inShield.set("interrupted in the shield: " + e);
                          }
                        });
                try {
                  new CountDownLatch(1).await(10, TimeUnit.SECONDS);
                  afterShield.set(new AssertionError("not cancelled after the shield"));
                } catch (InterruptedException expected) {
                  afterShield.set(expected);
                }
              });
          CancelScope.shielded() // the body watches from a shield: it is in the group too
              .run(
                  () -> {
                    started.await();
                    Probes.awaitWaiting(child.get(), Duration.ofSeconds(10));
                    group.cancel("stop");
                    shielded.await();
                    // Ten re-delivery periods in the shield: a watcher that did not drop the watch
                    // would
                    // have interrupted it several times by now.
                    long until =
                        System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(10 * BOUND_MILLIS);
                    Probes.awaitTrue(
                        "ten periods passed",
                        Duration.ofSeconds(5),
                        () -> System.nanoTime() - until >= 0L);
                    String tree = TaskTree.capture().format();
                    assertThat(tree).as(tree).doesNotContain("redeliveries=");
                    release.countDown();
                  });
        });
    assertThat(inShield.get()).isNull();
    assertThat(afterShield.get()).isInstanceOf(InterruptedException.class);
    assertThat(group.cancelCaught()).isTrue();
  }

  /**
   * CancelScope.cooperative's javadoc: inside it the library never interrupts the thread (an
   * interrupt delivered before entry is dropped, none is re-delivered); on leaving it into a region
   * still cancelled, delivery resumes at once.
   */
  @RepeatedTest(10)
  void cooperativeScopeIsNeverInterruptedAndDeliveryResumesOnLeaving() throws Exception {
    TaskGroup group = TaskGroup.named("coop");
    CountDownLatch inside = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    AtomicReference<String> problem = new AtomicReference<>();
    AtomicReference<Throwable> after = new AtomicReference<>();
    AtomicReference<Thread> child = new AtomicReference<>();
    CountDownLatch started = new CountDownLatch(1); // a task cancelled before it starts never runs
    group.run(
        () -> {
          group.fork(
              () -> {
                child.set(Thread.currentThread());
                started.countDown();
                try {
                  new CountDownLatch(1).await();
                } catch (InterruptedException swallowed) {
                  // the first delivery, swallowed: the watch is now active
                }
                CancelScope.cooperative()
                    .run(
                        () -> {
                          if (Thread.currentThread().isInterrupted()) {
                            problem.set("interrupt status set on entry");
                          }
                          inside.countDown();
                          try {
                            release.await();
                          } catch (InterruptedException e) {
                            problem.set("interrupted in a cooperative scope: " + e);
                          }
                          if (!CancelScope.isCancelled()) {
                            problem.set("isCancelled() false in a cancelled cooperative scope");
                          }
                        });
                try {
                  new CountDownLatch(1).await(10, TimeUnit.SECONDS);
                  after.set(new AssertionError("not cancelled after leaving"));
                } catch (InterruptedException expected) {
                  after.set(expected);
                }
              });
          CancelScope.shielded() // the body watches from a shield: it is in the group too
              .run(
                  () -> {
                    started.await();
                    Probes.awaitWaiting(child.get(), Duration.ofSeconds(10));
                    group.cancel();
                    inside.await();
                    long until =
                        System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(10 * BOUND_MILLIS);
                    Probes.awaitTrue(
                        "ten periods passed",
                        Duration.ofSeconds(5),
                        () -> System.nanoTime() - until >= 0L);
                    release.countDown();
                  });
        });
    assertThat(problem.get()).isNull();
    assertThat(after.get()).isInstanceOf(InterruptedException.class);
  }

  /**
   * "An interrupt the library delivered for a scope never outlives that scope" (guide, "Interrupts
   * from someone else"), tested where the watcher races the exit: a pooled platform thread swallows
   * a random number of re-deliveries in a cancelled scope and returns from it normally at a random
   * moment; neither the code right after the scope nor the pool's next job on the same thread may
   * see an interrupt.
   */
  @RepeatedTest(3)
  void noInterruptLeaksFromACancelledScopeIntoTheNextJobOfAPooledThread() throws Exception {
    long seed = Probes.seed("diagnostics.seed", "pooled leak");
    java.util.Random random = new java.util.Random(seed);
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try {
      for (int round = 0; round < 25; round++) {
        int swallows = 1 + random.nextInt(3);
        int spinMicros = random.nextInt((int) (BOUND_MILLIS * 1000));
        String leak =
            pool.submit(
                    () -> {
                      CancelScope s = CancelScope.create();
                      s.run(
                          () -> {
                            s.cancel();
                            for (int i = 0; i < swallows; i++) {
                              try {
                                new CountDownLatch(1).await(10, TimeUnit.SECONDS);
                              } catch (InterruptedException swallowed) {
                                // swallowed
                              }
                            }
                            long until = System.nanoTime() + spinMicros * 1000L;
                            while (System.nanoTime() - until < 0L) {
                              Thread.interrupted(); // swallowing right up to the exit
                            }
                          });
                      return probeForInterrupt("after the scope");
                    })
                .get(20, TimeUnit.SECONDS);
        assertThat(leak).as("seed %d round %d", seed, round).isNull();
        String next = pool.submit(() -> probeForInterrupt("next job")).get(20, TimeUnit.SECONDS);
        assertThat(next).as("seed %d round %d", seed, round).isNull();
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /** Blocks for three re-delivery periods; returns what interrupted it, or null. */
  private static String probeForInterrupt(String where) {
    if (Thread.currentThread().isInterrupted()) {
      return where + ": interrupt status set";
    }
    try {
      new CountDownLatch(1).await(3 * BOUND_MILLIS, TimeUnit.MILLISECONDS);
      return null;
    } catch (InterruptedException e) {
      return where + ": interrupted";
    }
  }

  /**
   * Many swallowers at once on platform threads (the guide: a swallowing library "delays a
   * cancellation by at most one re-delivery period; it cannot lose it"): each swallows three
   * re-deliveries inside a nested plain scope and then lets the fourth through; the group ends.
   */
  @RepeatedTest(2)
  void manyPlatformSwallowersInNestedScopesAllEnd() throws Exception {
    int children = 300;
    CountDownLatch parked = new CountDownLatch(children);
    AtomicInteger done = new AtomicInteger();
    TaskGroup group =
        TaskGroup.builder().name("many").threadFactory(Thread.ofPlatform().factory()).build();
    long start = System.nanoTime();
    group.run(
        () -> {
          for (int i = 0; i < children; i++) {
            group.fork(
                () ->
                    CancelScope.create()
                        .run(
                            () -> {
                              parked.countDown();
                              for (int swallowed = 0; swallowed < 4; ) {
                                try {
                                  new CountDownLatch(1).await();
                                } catch (InterruptedException e) {
                                  swallowed++;
                                }
                              }
                              done.incrementAndGet();
                              new CountDownLatch(1).await(); // the fifth: let it through
                            }));
          }
          parked.await();
          group.cancel();
        });
    assertThat(done.get()).isEqualTo(children);
    assertThat(group.cancelCaught()).isTrue();
    System.out.printf(
        "%d platform swallowers ended in %d ms%n",
        children, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
  }

  // ---- the stuck warning -------------------------------------------------------------------

  /**
   * A group whose owner already waits for its children when a deadline of a scope around it
   * expires: the warning still comes (Group's wait must notice a cancellation from above), once,
   * naming the group, the deadline, the child and the frame it swallows in.
   */
  @RepeatedTest(3)
  void cancelFromAnOuterDeadlineWhileTheOwnerJoinsWarnsOnce() throws Exception {
    setStuckThresholdMillis(100);
    CountDownLatch stop = new CountDownLatch(1);
    AtomicInteger swallowed = new AtomicInteger();
    TaskGroup group = TaskGroup.named("outer-dl");
    Thread releaser =
        Thread.ofVirtual()
            .start(
                () -> {
                  Probes.awaitTrue(
                      "the warning", Duration.ofSeconds(20), () -> warningsFor("outer-dl") > 0);
                  // three more thresholds: a second warning would have come by now
                  long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(300);
                  Probes.awaitTrue(
                      "300 ms", Duration.ofSeconds(5), () -> System.nanoTime() - until >= 0L);
                  stop.countDown();
                });
    CountDownLatch started = new CountDownLatch(1); // a task cancelled before it starts never runs
    CancelScope outer = CancelScope.create();
    outer.run(
        () ->
            group.run(
                () -> {
                  group.fork(
                      "dl-stuck",
                      () -> {
                        started.countDown();
                        swallowUntil(stop, swallowed);
                      });
                  started.await();
                  outer.setTimeout(Duration.ofMillis(20)); // fires while the owner joins, or so
                }));
    releaser.join();
    assertThat(warningsFor("outer-dl")).isEqualTo(1);
    String w = only("outer-dl");
    assertThat(w)
        .startsWith("group 'outer-dl' was cancelled ")
        .contains("(deadline expired)")
        .containsPattern("task 'dl-stuck' on thread #\\d+ \"dl-stuck\"")
        .containsPattern("interrupt re-delivered [1-9]\\d* times")
        .contains("DiagnosticsSweepTest.swallowUntil(");
    assertThat(swallowed.get()).isGreaterThan(1);
  }

  private long warningsFor(String group) {
    return warnings.stream()
        .filter(r -> r.getMessage().startsWith("group '" + group + "'"))
        .count();
  }

  private String only(String group) {
    return warnings.stream()
        .filter(r -> r.getMessage().startsWith("group '" + group + "'"))
        .findFirst()
        .orElseThrow()
        .getMessage();
  }

  /**
   * Nested groups: each cancelled group whose children outlive the threshold warns once; a child
   * that ended when cancelled is never named; the outer warning names the task that owns the inner
   * group.
   */
  @RepeatedTest(3)
  void nestedGroupsWarnOnceEachAndNeverNameAChildThatEnded() throws Exception {
    setStuckThresholdMillis(100);
    CountDownLatch stop = new CountDownLatch(1);
    CountDownLatch forked = new CountDownLatch(2);
    AtomicInteger swallowed = new AtomicInteger();
    TaskGroup outer = TaskGroup.named("n-outer");
    Thread releaser =
        Thread.ofVirtual()
            .start(
                () -> {
                  Probes.awaitTrue(
                      "both warnings",
                      Duration.ofSeconds(20),
                      () -> warningsFor("n-outer") > 0 && warningsFor("n-inner") > 0);
                  stop.countDown();
                });
    outer.run(
        () -> {
          outer.fork(
              "n-inner-owner",
              () -> {
                TaskGroup inner = TaskGroup.named("n-inner");
                inner.run(
                    () -> {
                      inner.fork(
                          "n-polite",
                          () -> {
                            forked.countDown();
                            new CountDownLatch(1).await();
                          });
                      inner.fork(
                          "n-stuck",
                          () -> {
                            forked.countDown();
                            swallowUntil(stop, swallowed);
                          });
                    });
              });
          outer.fork("n-polite-outer", () -> new CountDownLatch(1).await());
          forked.await();
          outer.cancel("nested");
        });
    releaser.join();
    assertThat(warningsFor("n-outer")).isEqualTo(1);
    assertThat(warningsFor("n-inner")).isEqualTo(1);
    assertThat(only("n-inner")).contains("'n-stuck'").doesNotContain("n-polite");
    assertThat(only("n-outer"))
        .contains("'n-inner-owner'")
        .doesNotContain("n-polite-outer")
        .contains("cancelled by");
  }

  /**
   * A group running inside a shield while the scope outside is cancelled is not cancelled: slow
   * children there are not "a cancelled group whose children have not finished" and get no warning;
   * nor does a group whose cancelled children end at once.
   */
  @RepeatedTest(2)
  void noWarningForAShieldedGroupOrForChildrenThatEnd() throws Exception {
    setStuckThresholdMillis(50);
    CancelScope outer = CancelScope.create();
    outer.run(
        () -> {
          outer.cancel();
          CancelScope.shielded()
              .run(
                  () -> {
                    TaskGroup g = TaskGroup.named("shielded-slow");
                    g.run(
                        () ->
                            g.fork(
                                () -> {
                                  // slow but not cancelled: six thresholds
                                  long until =
                                      System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(300);
                                  while (System.nanoTime() - until < 0L) {
                                    new CountDownLatch(1).await(10, TimeUnit.MILLISECONDS);
                                  }
                                }));
                  });
        });
    for (int i = 0; i < 20; i++) {
      TaskGroup quick = TaskGroup.named("quick-" + i);
      quick.run(
          () -> {
            for (int c = 0; c < 5; c++) {
              quick.fork(() -> new CountDownLatch(1).await());
            }
            quick.cancel();
          });
    }
    assertThat(warnings).extracting(LogRecord::getMessage).isEmpty();
  }

  /**
   * The owner interrupted from outside while it waits for its children cancels them (the guide); a
   * child that swallows that cancellation is reported with that reason.
   */
  @RepeatedTest(2)
  void ownerInterruptedWhileJoiningWarnsWithThatReason() throws Exception {
    setStuckThresholdMillis(100);
    CountDownLatch stop = new CountDownLatch(1);
    CountDownLatch started = new CountDownLatch(1);
    AtomicInteger swallowed = new AtomicInteger();
    TaskGroup group = TaskGroup.named("own-int");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(
                        () ->
                            group.fork(
                                "oi-stuck",
                                () -> {
                                  started.countDown();
                                  swallowUntil(stop, swallowed);
                                }));
                  } catch (Throwable t) {
                    thrown.set(t);
                  }
                });
    started.await();
    Probes.awaitTrue(
        "owner joining", Duration.ofSeconds(10), () -> group.toString().contains("joining"));
    owner.interrupt();
    Probes.awaitTrue("the warning", Duration.ofSeconds(20), () -> warningsFor("own-int") > 0);
    stop.countDown();
    owner.join();
    assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
    assertThat(only("own-int")).contains("owner was interrupted").contains("'oi-stuck'");
  }

  // ---- JFR events, read in-process -----------------------------------------------------------

  /**
   * Runs {@code work} while a recording records every dev.taskgroup event; returns them, read back
   * from the recording's dump (as JfrEventsTest does). Not a RecordingStream: its stop() now and
   * then handed over none of the events of a short work committed just before it (seen in about one
   * run of the class in three, always in the first test to record).
   */
  private static List<RecordedEvent> stream(Body work) throws Exception {
    Path file = Files.createTempFile("diagnostics", ".jfr");
    try {
      try (Recording r = new Recording()) {
        for (String n :
            List.of("GroupEnd", "Cancel", "DeadlineExpired", "Redelivery", "CancelHook")) {
          r.enable("dev.taskgroup." + n).withoutThreshold();
        }
        r.start();
        work.run();
        r.stop();
        r.dump(file);
      }
      return RecordingFile.readAllEvents(file);
    } finally {
      Files.deleteIfExists(file);
    }
  }

  private static List<RecordedEvent> ofType(List<RecordedEvent> events, String type) {
    return events.stream()
        .filter(e -> e.getEventType().getName().equals("dev.taskgroup." + type))
        .toList();
  }

  /**
   * The Cancel event: "A cancel scope or group was first cancelled; the event thread cancelled it".
   * Cancelled three times from three threads, a scope gives one event, from the first canceller,
   * with the first reason; a task cancel, a failure and a deadline each give theirs.
   */
  @RepeatedTest(3)
  void cancelEventOncePerScopeFromTheFirstCanceller() throws Exception {
    AtomicReference<Thread> blocked = new AtomicReference<>();
    var events =
        stream(
            () -> {
              CancelScope s = CancelScope.create();
              s.run(
                  () -> {
                    Thread first =
                        Thread.ofPlatform().name("first-canceller").start(() -> s.cancel("r1"));
                    first.join();
                    s.cancel("r2");
                    Thread.ofVirtual().start(() -> s.cancel("r3")).join();
                  });
              TaskGroup g = TaskGroup.named("jfr-task-cancel");
              CountDownLatch started = new CountDownLatch(1);
              g.run(
                  () -> {
                    Task<?> victim =
                        g.fork(
                            "jfr-victim",
                            () -> {
                              started.countDown();
                              new CountDownLatch(1).await();
                            });
                    started.await();
                    victim.cancel(true);
                  });
              try {
                TaskGroup f = TaskGroup.named("jfr-failing");
                f.run(
                    () ->
                        f.fork(
                            () -> {
                              throw new IllegalStateException("boom");
                            }));
              } catch (TaskGroupException expected) {
                // the failure cancelled the group
              }
              CancelScope.moveOnAfter(
                  Duration.ofMillis(1),
                  () -> {
                    blocked.set(Thread.currentThread());
                    new CountDownLatch(1).await();
                    return null;
                  });
            });
    List<RecordedEvent> cancels = ofType(events, "Cancel");
    List<RecordedEvent> mine =
        cancels.stream()
            .filter(e -> String.valueOf(e.getString("reason")).matches(".*: r[123]$"))
            .toList();
    assertThat(mine).hasSize(1);
    assertThat(mine.get(0).getString("reason")).endsWith(": r1");
    assertThat(mine.get(0).getString("scope")).isEqualTo("cancel scope");
    assertThat(mine.get(0).getThread().getJavaName()).isEqualTo("first-canceller");
    assertThat(cancels)
        .filteredOn(e -> String.valueOf(e.getString("scope")).startsWith("task 'jfr-victim'"))
        .singleElement()
        .satisfies(
            e ->
                assertThat(e.getString("reason"))
                    .startsWith("cancelled by ")
                    .endsWith(": Task.cancel() called"));
    assertThat(cancels)
        .filteredOn(e -> "group 'jfr-failing'".equals(e.getString("scope")))
        .singleElement()
        .satisfies(e -> assertThat(e.getString("reason")).contains("because of a failure"));
    RecordedEvent expired =
        cancels.stream()
            .filter(e -> "deadline expired".equals(e.getString("reason")))
            .reduce((a, b) -> b)
            .orElseThrow();
    assertThat(expired.getThread().getJavaThreadId()).isNotEqualTo(blocked.get().threadId());
    assertThat(ofType(events, "DeadlineExpired")).isNotEmpty();
  }

  /**
   * GroupEnd's outcome is "how run ended: completed, cancelled, failed or interrupted": an owner
   * interrupted from outside gives interrupted, a group ended by a cancelled scope around it gives
   * cancelled; children counts every child started, also those that waited for a place.
   */
  @RepeatedTest(3)
  void groupEndSaysInterruptedAndCancelledFromAboveAndCountsQueuedChildren() throws Exception {
    var events =
        stream(
            () -> {
              TaskGroup owned = TaskGroup.named("jfr-interrupted");
              CountDownLatch waiting = new CountDownLatch(1);
              Thread owner =
                  Thread.ofVirtual()
                      .start(
                          () -> {
                            try {
                              owned.run(
                                  () -> {
                                    waiting.countDown();
                                    new CountDownLatch(1).await();
                                  });
                            } catch (InterruptedException expected) {
                              // the owner's interrupt, handed back
                            }
                          });
              waiting.await();
              Probes.awaitWaiting(owner, Duration.ofSeconds(10));
              owner.interrupt();
              owner.join();
              CancelScope outer = CancelScope.create();
              outer.run(
                  () -> {
                    TaskGroup inner = TaskGroup.named("jfr-from-above");
                    inner.run(
                        () -> {
                          inner.fork(() -> new CountDownLatch(1).await());
                          outer.cancel();
                          new CountDownLatch(1).await();
                        });
                  });
              TaskGroup queued = TaskGroup.builder().name("jfr-queued").maxConcurrency(1).build();
              queued.run(
                  () -> {
                    for (int i = 0; i < 4; i++) {
                      queued.fork(() -> {});
                    }
                  });
            });
    var ends = ofType(events, "GroupEnd");
    assertThat(ends)
        .filteredOn(e -> e.getString("name").equals("jfr-interrupted"))
        .singleElement()
        .satisfies(e -> assertThat(e.getString("outcome")).isEqualTo("interrupted"));
    assertThat(ends)
        .filteredOn(e -> e.getString("name").equals("jfr-from-above"))
        .singleElement()
        .satisfies(
            e -> {
              assertThat(e.getString("outcome")).isEqualTo("cancelled");
              assertThat(e.getInt("children")).isEqualTo(1);
            });
    assertThat(ends)
        .filteredOn(e -> e.getString("name").equals("jfr-queued"))
        .singleElement()
        .satisfies(e -> assertThat(e.getInt("children")).isEqualTo(4));
  }

  /**
   * "Cost nothing while no recording runs" and still record once one starts: a scope cancelled
   * between two recordings is in neither; each recording has its own events; a group running when a
   * recording starts is not reported half-measured.
   */
  @RepeatedTest(3)
  void eventsFollowRecordingsStartedAndStoppedMidRun() throws Exception {
    TaskGroup straddling = TaskGroup.named("jfr-straddling");
    CountDownLatch inBody = new CountDownLatch(1);
    CountDownLatch finish = new CountDownLatch(1);
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    straddling.run(
                        () -> {
                          inBody.countDown();
                          finish.await();
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    inBody.await();
    var first = stream(() -> CancelScope.create().run(() -> {}));
    CancelScope between = CancelScope.create();
    between.run(between::cancel);
    String id = Long.toString(System.nanoTime());
    var second =
        stream(
            () -> {
              CancelScope s = CancelScope.create();
              s.run(() -> s.cancel("during-" + id));
              finish.countDown();
              owner.join();
            });
    assertThat(ofType(first, "Cancel")).isEmpty();
    assertThat(ofType(second, "Cancel"))
        .extracting(e -> e.getString("reason"))
        .anyMatch(r -> r.endsWith("during-" + id));
    assertThat(ofType(second, "GroupEnd"))
        .extracting(e -> e.getString("name"))
        .doesNotContain("jfr-straddling");
  }

  /**
   * Redelivery events: "the thread interrupted again" is the swallower, the count goes 1, 2, 3...
   * for it, the event is committed by the watcher or by the swallower itself, and a sibling that
   * ended when cancelled has none. CancelHook: an action that throws is "failed".
   */
  @RepeatedTest(3)
  void redeliveryEventsNameOnlyTheSwallowerAndAFailingHookIsFailed() throws Exception {
    AtomicReference<Thread> swallower = new AtomicReference<>();
    AtomicReference<Thread> polite = new AtomicReference<>();
    var events =
        stream(
            () -> {
              TaskGroup g = TaskGroup.named("jfr-redeliver");
              CountDownLatch started = new CountDownLatch(2);
              g.run(
                  () -> {
                    g.fork(
                        () -> {
                          polite.set(Thread.currentThread());
                          started.countDown();
                          new CountDownLatch(1).await();
                        });
                    g.fork(
                        () -> {
                          swallower.set(Thread.currentThread());
                          started.countDown();
                          for (int swallowed = 0; swallowed < 4; ) {
                            try {
                              new CountDownLatch(1).await();
                            } catch (InterruptedException e) {
                              swallowed++;
                            }
                          }
                        });
                    started.await();
                    g.cancel();
                  });
              TaskGroup h = TaskGroup.named("jfr-hook");
              try {
                h.run(
                    () -> {
                      try (var reg =
                          CancelScope.onCancel(
                              () -> {
                                throw new IllegalStateException("hook broke");
                              })) {
                        h.cancel();
                        CancelScope.checkpoint();
                      }
                    });
              } catch (TaskGroupException expected) {
                // the hook's failure is the group's
              }
            });
    long sw = swallower.get().threadId();
    long po = polite.get().threadId();
    List<RecordedEvent> red = ofType(events, "Redelivery");
    List<RecordedEvent> forSwallower =
        red.stream().filter(e -> e.getThread("thread").getJavaThreadId() == sw).toList();
    assertThat(forSwallower.stream().mapToInt(e -> e.getInt("count")).sorted().toArray())
        .isEqualTo(java.util.stream.IntStream.rangeClosed(1, forSwallower.size()).toArray());
    // It swallowed 4 interrupts: the cancel's and re-deliveries. Under load a re-delivery can land
    // while the cancel's own interrupt is still pending (merged into one wake-up), so at least 2.
    assertThat(forSwallower).hasSizeGreaterThanOrEqualTo(2);
    assertThat(forSwallower)
        .allSatisfy(
            e ->
                assertThat(e.getThread().getJavaName())
                    .isIn("taskgroup-redelivery", swallower.get().getName()));
    assertThat(red).noneMatch(e -> e.getThread("thread").getJavaThreadId() == po);
    assertThat(ofType(events, "CancelHook"))
        .extracting(e -> e.getString("outcome"))
        .contains("failed");
  }

  // ---- TaskTree JSON --------------------------------------------------------------------------

  /**
   * toJson's "redeliveries" field is the same count format() prints, and a swallower's task node
   * carries its own thread's id and the group's cancel reason.
   */
  @RepeatedTest(3)
  void jsonAndTextAgreeOnASwallower() throws Exception {
    TaskGroup group = TaskGroup.named("json-swallow");
    CountDownLatch stop = new CountDownLatch(1);
    CountDownLatch started = new CountDownLatch(1);
    AtomicInteger swallowed = new AtomicInteger();
    AtomicReference<Thread> child = new AtomicReference<>();
    AtomicReference<String> json = new AtomicReference<>();
    AtomicReference<String> text = new AtomicReference<>();
    group.run(
        () -> {
          group.fork(
              "json-child",
              () -> {
                child.set(Thread.currentThread());
                started.countDown();
                swallowUntil(stop, swallowed);
              });
          started.await();
          CancelScope.shielded()
              .run(
                  () -> {
                    group.cancel("json");
                    Probes.awaitTrue(
                        "three swallowed", Duration.ofSeconds(10), () -> swallowed.get() >= 3);
                    // Two captures agree when nothing moves: hold the swallower still first.
                    for (; ; ) {
                      TaskTree t = TaskTree.capture();
                      String f = t.format();
                      String j = t.toJson();
                      if (redeliveriesOnLine(f, "task 'json-child'") >= 2) {
                        text.set(f);
                        json.set(j);
                        break;
                      }
                    }
                  });
          stop.countDown();
        });
    int fromText = redeliveriesOnLine(text.get(), "task 'json-child'");
    Matcher m =
        Pattern.compile(
                "\\{\"kind\":\"task\",\"name\":\"json-child\",\"state\":\"cancelled\",\"threadId\":"
                    + child.get().threadId()
                    + ",[^{}]*?\"cancelReason\":\"cancelled by [^{}]*?: json\",[^{}]*?"
                    + "\"redeliveries\":(\\d+)")
            .matcher(json.get());
    assertThat(m.find()).as(json.get()).isTrue();
    assertThat(Integer.parseInt(m.group(1))).isEqualTo(fromText);
  }
}
