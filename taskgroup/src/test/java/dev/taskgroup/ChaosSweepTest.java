package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import dev.taskgroup.Fixtures.ThreadKind;
import dev.taskgroup.Fixtures.Tracking;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Randomised trees of cancel scopes (plain, with a timeout, shielded) and task groups (CANCEL_ALL
 * or COLLECT) whose leaves return, fail (unchecked, checked, Error), block, swallow the interrupt,
 * cancel a random scope, fail in a try-with-resources close() while being cancelled (a failure
 * riding on the cancellation), or fail in shielded cleanup, plainly or wrapping the cancellation
 * they caught; meanwhile another thread cancels random scopes and groups and moves their deadlines.
 * Checked for every tree: each failure thrown appears exactly once in what the root throws (a
 * {@link TaskGroupException}'s failures, a failure's suppressed exceptions); the root, the
 * outermost scope, never throws {@link InterruptedException} (nobody interrupts from outside); no
 * group's run returns while one of its children runs; no interrupt is left on the thread; every
 * child thread ends. The seed is printed (replay: {@code -DchaosSweep.seed=N}). Closest upstream:
 * Trio's test_cancel_scope_* and AnyIO's test_taskgroups.py nesting scenarios, mixed. IOExceptions
 * are not injected: one thrown while a cancellation's interrupt is pending is the cancellation by
 * contract, so whether it is a failure depends on timing.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ChaosSweepTest {
  private static final int ROUNDS = 300;
  private static final int MAX_DEPTH = 3;

  /** An injected checked failure. */
  static final class InjectedChecked extends Exception {
    InjectedChecked(String message) {
      super(message);
    }
  }

  /** A resource whose close() fails. */
  private record FailingClose(Exception failure) implements AutoCloseable {
    @Override
    public void close() throws Exception {
      throw failure;
    }
  }

  /** One tree's run: its random source, what it threw, what it can cancel. */
  private static final class Round {
    final SplittableRandom rnd;
    final Tracking threads;
    final Set<Throwable> thrown =
        Collections.newSetFromMap(Collections.synchronizedMap(new IdentityHashMap<>()));
    final List<Object> targets = new CopyOnWriteArrayList<>();
    final List<String> problems = new CopyOnWriteArrayList<>();
    final AtomicInteger ids = new AtomicInteger();

    Round(long seed, ThreadKind kind) {
      this.rnd = new SplittableRandom(seed);
      this.threads = new Tracking(kind);
    }

    synchronized int next(int bound) {
      return rnd.nextInt(bound);
    }

    <T extends Throwable> T inject(T failure) {
      thrown.add(failure);
      return failure;
    }

    Throwable newFailure() {
      int id = ids.incrementAndGet();
      return switch (next(3)) {
        case 0 -> new IllegalStateException("injected " + id);
        case 1 -> new InjectedChecked("injected checked " + id);
        default -> new AssertionError("injected error " + id);
      };
    }

    Exception newException() {
      int id = ids.incrementAndGet();
      return next(2) == 0
          ? new IllegalStateException("injected " + id)
          : new InjectedChecked("injected checked " + id);
    }

    void node(int depth) throws Exception {
      int kind = depth >= MAX_DEPTH ? 9 : next(10);
      if (kind <= 1) {
        CancelScope s =
            next(2) == 0 ? CancelScope.create() : CancelScope.withTimeout(millis(next(10)));
        targets.add(s);
        s.run(() -> children(depth));
      } else if (kind == 2) {
        CancelScope s = CancelScope.shielded();
        if (next(2) == 0) {
          s.setTimeout(millis(next(20)));
        }
        targets.add(s);
        s.run(() -> children(depth));
      } else if (kind <= 5) {
        group(depth);
      } else {
        leaf();
      }
    }

    void children(int depth) throws Exception {
      int n = 1 + next(3);
      for (int i = 0; i < n; i++) {
        node(depth + 1);
      }
    }

    void group(int depth) throws Exception {
      var b = TaskGroup.builder().threadFactory(threads).name("g" + ids.incrementAndGet());
      if (next(3) == 0) {
        b.failurePolicy(FailurePolicy.COLLECT);
      }
      if (next(4) == 0) {
        b.timeout(millis(next(15)));
      }
      TaskGroup g = b.build();
      targets.add(g);
      AtomicInteger live = new AtomicInteger();
      try {
        g.run(
            () -> {
              int n = 1 + next(3);
              for (int i = 0; i < n; i++) {
                g.fork(
                    () -> {
                      live.incrementAndGet();
                      try {
                        node(depth + 1);
                      } finally {
                        live.decrementAndGet();
                      }
                    });
              }
              if (next(2) == 0) {
                node(depth + 1);
              }
            });
      } finally {
        if (live.get() != 0) {
          problems.add(g + ": run ended with " + live.get() + " children still running");
        }
      }
    }

    void leaf() throws Exception {
      switch (next(9)) {
        case 0 -> {}
        case 1 -> sneaky(inject(newFailure()));
        case 2 -> Thread.sleep(next(15));
        case 3 -> {
          try {
            Thread.sleep(next(15));
          } catch (InterruptedException swallowed) {
            // swallowed: the library interrupts again
          }
        }
        case 4 -> {
          if (!targets.isEmpty()) {
            cancel(targets.get(next(targets.size())));
          }
        }
        case 5 -> {
          // a close() failing while the block is cancelled rides on the cancellation
          try (var r = new FailingClose(inject(newException()))) {
            Thread.sleep(next(15));
          }
        }
        case 6 -> {
          try {
            Thread.sleep(next(15));
          } finally {
            Throwable f = inject(newFailure());
            CancelScope.shielded().run(() -> sneaky(f));
          }
        }
        case 7 -> {
          try {
            Thread.sleep(next(15));
          } catch (InterruptedException e) {
            // a cleanup failure that wraps the cancellation it caught
            RuntimeException f = inject(new IllegalStateException("cleanup " + ids.get(), e));
            CancelScope.shielded().run(() -> sneaky(f));
          }
        }
        default -> {
          CancelScope.checkpoint();
          Thread.sleep(next(5));
        }
      }
    }

    void cancel(Object target) {
      if (target instanceof TaskGroup g) {
        g.cancel("chaos");
      } else {
        ((CancelScope) target).cancel("chaos");
      }
    }

    void disturb() {
      Object target = targets.get(next(targets.size()));
      if (next(3) == 0) {
        CancelScope s = target instanceof TaskGroup g ? g.cancelScope() : (CancelScope) target;
        s.setTimeout(millis(next(5)));
      } else {
        cancel(target);
      }
    }
  }

  private static Duration millis(int n) {
    return Duration.ofMillis(n);
  }

  @SuppressWarnings("unchecked")
  private static <X extends Throwable> void sneaky(Throwable t) throws X {
    throw (X) t;
  }

  @Test
  void randomScopeTreesLoseNoFailureLeakNoInterruptAndLeaveNoThread() throws Exception {
    long seed = Probes.seed("chaosSweep.seed", "ChaosSweepTest");
    for (int round = 0; round < ROUNDS; round++) {
      long roundSeed = seed + round;
      try {
        runRound(roundSeed);
      } catch (Throwable e) {
        throw new AssertionError("round " + round + " (round seed " + roundSeed + ") failed", e);
      }
    }
  }

  private static void runRound(long seed) throws Exception {
    ThreadKind kind = (seed & 1) == 0 ? ThreadKind.VIRTUAL : ThreadKind.PLATFORM;
    Round r = new Round(seed, kind);
    AtomicBoolean done = new AtomicBoolean();
    int disturbances = r.next(4);
    Thread disturber =
        Thread.ofVirtual()
            .start(
                () -> {
                  for (int i = 0; i < disturbances && !done.get(); i++) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1 + r.next(10))); // pacing
                    if (!r.targets.isEmpty()) {
                      r.disturb();
                    }
                  }
                });
    List<Throwable> outcome = new ArrayList<>(1);
    Probes.onThread(
        kind,
        Duration.ofSeconds(30),
        () -> {
          try {
            if (r.next(2) == 0) {
              CancelScope root = CancelScope.create();
              r.targets.add(root);
              root.run(() -> r.children(0));
            } else {
              r.group(0);
            }
          } catch (Throwable t) {
            outcome.add(t);
          }
          if (Thread.currentThread().isInterrupted()) {
            r.problems.add("interrupt status left on the root thread");
          }
        });
    done.set(true);
    disturber.join();
    r.threads.assertAllDone();
    Throwable out = outcome.isEmpty() ? null : outcome.get(0);
    if (out instanceof InterruptedException) {
      r.problems.add("the outermost scope threw " + out);
    }
    Map<Throwable, Integer> seen = new IdentityHashMap<>();
    count(out, seen, 0);
    for (Throwable f : r.thrown) {
      int n = seen.getOrDefault(f, 0);
      if (n != 1) {
        r.problems.add(f + " appears " + n + " times in the outcome " + out);
      }
    }
    if (!r.problems.isEmpty() && out != null) {
      out.printStackTrace(System.out);
    }
    assertThat(r.problems).as("seed " + seed).isEmpty();
  }

  /** Counts each throwable reachable as a failure, a suppressed exception or a cause. */
  private static void count(Throwable t, Map<Throwable, Integer> seen, int depth) {
    if (t == null || depth > 64) {
      return;
    }
    seen.merge(t, 1, Integer::sum);
    if (t instanceof TaskGroupException e) {
      for (Throwable f : e.failures()) { // its cause and suppressed mirror these
        count(f, seen, depth + 1);
      }
      return;
    }
    for (Throwable s : t.getSuppressed()) {
      count(s, seen, depth + 1);
    }
    if (t.getCause() != null && !seen.containsKey(t.getCause())) {
      count(t.getCause(), seen, depth + 1);
    }
  }
}
