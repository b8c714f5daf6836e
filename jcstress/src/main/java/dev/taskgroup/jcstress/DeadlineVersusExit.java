package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.CancelScope;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * A deadline firing against the exit of its scope: a plain scope with a very short timeout whose
 * body busy-waits for about as long (no checkpoint, no interruptible call) and returns normally.
 * Only one actor: the racing thread is the library's deadline timer. docs/guide.md, "Which scope
 * absorbs a cancellation": a plain scope whose body returns normally reports {@code cancelCaught()
 * == false} (cancelCalled may be either: the deadline may or may not have expired before the scope
 * exited), and the interrupt the library delivered for the deadline never survives the scope's
 * exit.
 */
@JCStressTest
@Description("A CancelScope deadline firing against the scope's exit")
@Outcome(
    id = "fired in body",
    expect = ACCEPTABLE,
    desc =
        "The deadline fired while the body ran (it saw itself cancelled) and the body returned"
            + " normally: cancelCalled() true, cancelCaught() false, interrupt cleared at exit.")
@Outcome(
    id = "fired at exit",
    expect = ACCEPTABLE,
    desc =
        "The body did not see the deadline, but it fired while the scope was exiting:"
            + " cancelCalled() true, cancelCaught() false.")
@Outcome(
    id = "did not fire",
    expect = ACCEPTABLE,
    desc = "The scope exited before the deadline: cancelCalled() false.")
@Outcome(
    id = "interrupt left, .*",
    expect = FORBIDDEN,
    desc =
        "The thread's interrupt status was set after run returned: the deadline's interrupt"
            + " survived the scope's exit (the library's interrupt never survives the exit).")
@Outcome(
    id = "caught, .*",
    expect = FORBIDDEN,
    desc =
        "cancelCaught() true although the body returned normally (a body that returns normally catches nothing).")
@Outcome(
    id = "run threw .*",
    expect = FORBIDDEN,
    desc = "run threw although the body returned normally and no scope above is cancelled.")
@Outcome(
    id = "cancelled but not called",
    expect = FORBIDDEN,
    desc = "The body saw itself cancelled, yet cancelCalled() is false after run.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned and checked.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class DeadlineVersusExit {
  /** The timeout. */
  private static final long TIMEOUT_NANOS = 100_000L;

  private final CancelScope scope = CancelScope.withTimeout(Duration.ofNanos(TIMEOUT_NANOS));

  /**
   * How long the body runs: spread from half the timeout to two and a half times it, since the
   * timer thread wakes up some tens of microseconds late (more on a loaded machine); so some
   * instances exit just before the deadline fires, some just after.
   */
  private final long bodyNanos =
      TIMEOUT_NANOS / 2 + ThreadLocalRandom.current().nextLong(2 * TIMEOUT_NANOS);

  private boolean sawCancelled;
  private String runThrew;
  private boolean interruptLeft;

  /** Set when the owner's thread arrives with an interrupt left by an earlier instance. */
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      scope.run(
          () -> {
            Race.spinFor(bodyNanos);
            sawCancelled = CancelScope.isCancelled();
          });
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    interruptLeft = Thread.interrupted();
  }

  @Arbiter
  public void arbiter(L_Result r) {
    r.r1 = verdict();
  }

  private String verdict() {
    if (staleInterrupt) {
      return "interrupt landed late";
    }
    boolean called = scope.cancelCalled();
    String fired = sawCancelled ? "fired in body" : called ? "fired at exit" : "did not fire";
    if (runThrew != null) {
      return "run threw " + runThrew;
    }
    if (interruptLeft) {
      return "interrupt left, " + fired;
    }
    if (scope.cancelCaught()) {
      return "caught, " + fired;
    }
    if (sawCancelled && !called) {
      return "cancelled but not called";
    }
    return fired;
  }
}
