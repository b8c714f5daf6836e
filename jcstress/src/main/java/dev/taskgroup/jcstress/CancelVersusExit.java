package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.TaskGroup;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * {@code cancel()} against the group's exit: the body returns at once and {@code run} is closing
 * while another thread cancels (docs/guide.md, "Which scope absorbs a cancellation" and "Cancelling
 * a group"). The cancel either lands while the group is open (it is caught: the group's wait for
 * its children is a checkpoint) or after it exited (only {@code cancelCalled()} changes). The
 * library's interrupt for the cancel must never survive the exit.
 */
@JCStressTest
@Description("TaskGroup.cancel() from another thread against the group's exit")
@Outcome(
    id = "caught",
    expect = ACCEPTABLE,
    desc = "cancel() landed before the group exited: run returned normally, cancelCaught() true.")
@Outcome(
    id = "after exit",
    expect = ACCEPTABLE,
    desc = "cancel() came after the group exited: cancelCaught() false, cancelCalled() true.")
@Outcome(
    id = "run threw .*",
    expect = FORBIDDEN,
    desc = "run did not return normally: a group absorbs its own cancel().")
@Outcome(
    id = "interrupt left, .*",
    expect = FORBIDDEN,
    desc =
        "The owner's interrupt status was set after run returned: the library's interrupt for"
            + " the cancel survived the group's exit (an interrupt the library delivered never survives the scope's exit).")
@Outcome(
    id = "caught without cancelCalled",
    expect = FORBIDDEN,
    desc = "Right after run, cancelCaught() was true but cancelCalled() (read after it) false.")
@Outcome(
    id = "cancelCalled false",
    expect = FORBIDDEN,
    desc = "cancelCalled() is false after cancel() returned.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned and checked.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class CancelVersusExit {
  private final TaskGroup group = TaskGroup.create();

  private String runThrew;
  private boolean interruptLeft;
  private boolean caughtAtReturn;
  private boolean calledAtReturn;

  /** Set when the owner's thread arrives with an interrupt left by an earlier instance. */
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      group.run(() -> {});
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    interruptLeft = Thread.interrupted();
    caughtAtReturn = group.cancelCaught();
    calledAtReturn = group.cancelCalled();
  }

  @Actor
  public void canceller() {
    group.cancel();
  }

  @Arbiter
  public void arbiter(L_Result r) {
    r.r1 = verdict();
  }

  private String verdict() {
    if (staleInterrupt) {
      return "interrupt landed late";
    }
    if (runThrew != null) {
      return "run threw " + runThrew;
    }
    if (interruptLeft) {
      return "interrupt left, " + (caughtAtReturn ? "caught" : "not caught");
    }
    if (caughtAtReturn && !calledAtReturn) {
      return "caught without cancelCalled";
    }
    if (!group.cancelCalled()) {
      return "cancelCalled false";
    }
    return group.cancelCaught() ? "caught" : "after exit";
  }
}
