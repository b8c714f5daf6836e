package dev.taskgroup;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * An interrupt from outside the library, for the tests of what an outside interrupt does: a
 * platform thread of its own waits until {@code ready} is counted down (and, with {@link
 * #onceWaiting}, until the target is parked), interrupts the target once, then runs {@code
 * andThen}. {@link #join()} waits for it and fails the test if it could not do its part.
 */
final class OutsideInterrupter {
  private final Thread thread;
  private final AtomicReference<Throwable> failed = new AtomicReference<>();

  private OutsideInterrupter(
      CountDownLatch ready, Supplier<Thread> target, boolean waiting, Runnable andThen) {
    thread =
        Thread.ofPlatform()
            .name("outside-interrupter")
            .start(
                () -> {
                  try {
                    ready.await();
                    if (waiting) {
                      Probes.awaitWaiting(target.get(), Duration.ofSeconds(5));
                    }
                    target.get().interrupt();
                  } catch (InterruptedException e) {
                    // the test is being torn down: interrupt nobody
                  } catch (Throwable e) {
                    failed.set(e);
                  } finally {
                    andThen.run();
                  }
                });
  }

  /** Interrupts {@code target.get()} once {@code ready} is counted down. */
  static OutsideInterrupter once(CountDownLatch ready, Supplier<Thread> target) {
    return new OutsideInterrupter(ready, target, false, () -> {});
  }

  /**
   * Interrupts {@code target.get()} once {@code ready} is counted down and the target is parked or
   * blocked (for instance in the join at the end of a group's run), then runs {@code andThen}
   * whatever happened.
   */
  static OutsideInterrupter onceWaiting(
      CountDownLatch ready, Supplier<Thread> target, Runnable andThen) {
    return new OutsideInterrupter(ready, target, true, andThen);
  }

  /** {@link #onceWaiting(CountDownLatch, Supplier, Runnable)} with nothing to run after. */
  static OutsideInterrupter onceWaiting(CountDownLatch ready, Supplier<Thread> target) {
    return onceWaiting(ready, target, () -> {});
  }

  /**
   * Waits until the interrupter has ended; rethrows what kept it from interrupting, if anything.
   */
  void join() throws InterruptedException {
    thread.join();
    Throwable e = failed.get();
    if (e instanceof Error err) {
      throw err;
    }
    if (e instanceof RuntimeException re) {
      throw re;
    }
  }
}
