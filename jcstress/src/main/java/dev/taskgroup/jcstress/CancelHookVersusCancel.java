package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.CancelScope;
import java.util.concurrent.atomic.AtomicInteger;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * {@code CancelScope.onCancel} registration and {@code close()} against {@code cancel()} of the
 * scope from another thread (the CancelScope.onCancel javadoc): the action runs at most once, on
 * another thread; when the scope is already cancelled at registration it has run before {@code
 * onCancel} returns; after {@code close()} returns it is not running and will not start.
 */
@JCStressTest
@Description("CancelScope.onCancel register/close against cancel() from another thread")
@Outcome(
    id = "ran at registration",
    expect = ACCEPTABLE,
    desc =
        "The scope was already cancelled when onCancel was called: the action ran before"
            + " onCancel returned.")
@Outcome(
    id = "ran while open",
    expect = ACCEPTABLE,
    desc =
        "cancel() landed while the registration was open: the action ran once (close waited"
            + " for it if it was still running).")
@Outcome(
    id = "not run, cancel after close",
    expect = ACCEPTABLE,
    desc = "cancel() came after the registration was closed: the action never ran.")
@Outcome(
    id = "not run, close won",
    expect = ACCEPTABLE_INTERESTING,
    desc =
        "The owner saw the scope cancelled and closed the registration before the cancelling"
            + " thread reached the hook: close won the race and the action never ran. (The action"
            + " exists to unblock the owner; the owner is not blocked, it is closing.)")
@Outcome(id = "ran twice", expect = FORBIDDEN, desc = "The action ran more than once.")
@Outcome(
    id = "not run at registration",
    expect = FORBIDDEN,
    desc = "The scope was already cancelled, yet the action had not run when onCancel returned.")
@Outcome(
    id = "ran after close",
    expect = FORBIDDEN,
    desc = "The action started, or was still running, after close() returned.")
@Outcome(
    id = "interrupt left",
    expect = FORBIDDEN,
    desc = "The thread's interrupt status was set after the scope exited.")
@Outcome(
    id = "run threw .*",
    expect = FORBIDDEN,
    desc = "The scope's run threw, although its body returned normally.")
@Outcome(
    id = "caught without throw",
    expect = FORBIDDEN,
    desc = "The body returned normally, yet cancelCaught() is true.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned and checked.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class CancelHookVersusCancel {
  private final CancelScope scope = CancelScope.create();
  private final AtomicInteger runs = new AtomicInteger();
  private volatile boolean actionEnded;
  private volatile boolean closeReturned;
  private volatile boolean startedAfterClose;

  private boolean cancelledAtRegistration;
  private boolean endedAtRegistration;
  private boolean cancelSeenBeforeClose;
  private int runsAtClose;
  private boolean endedAtClose;
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
            cancelledAtRegistration = CancelScope.isCancelled();
            CancelScope.Registration reg = CancelScope.onCancel(this::action);
            endedAtRegistration = actionEnded;
            cancelSeenBeforeClose = scope.cancelCalled();
            reg.close();
            closeReturned = true;
            runsAtClose = runs.get();
            endedAtClose = actionEnded;
          });
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    interruptLeft = Thread.interrupted();
  }

  private void action() {
    if (closeReturned) {
      startedAfterClose = true;
    }
    runs.incrementAndGet();
    actionEnded = true;
  }

  @Actor
  public void canceller() {
    scope.cancel();
  }

  @Arbiter
  public void arbiter(L_Result r) {
    r.r1 = verdict();
  }

  private String verdict() {
    if (staleInterrupt) {
      return "interrupt landed late";
    }
    int n = runs.get();
    if (n > 1) {
      return "ran twice";
    }
    if (startedAfterClose || n != runsAtClose || (runsAtClose > 0 && !endedAtClose)) {
      return "ran after close";
    }
    if (cancelledAtRegistration && !endedAtRegistration) {
      return "not run at registration";
    }
    if (runThrew != null) {
      return "run threw " + runThrew;
    }
    if (interruptLeft) {
      return "interrupt left";
    }
    if (scope.cancelCaught()) {
      return "caught without throw";
    }
    if (n == 1) {
      return cancelledAtRegistration ? "ran at registration" : "ran while open";
    }
    return cancelSeenBeforeClose ? "not run, close won" : "not run, cancel after close";
  }
}
