package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.TaskGroup;
import dev.taskgroup.TaskGroupException;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * {@code cancel()} against a child failing (docs/guide.md, "Failures": the failure is reported
 * whatever the order; never a cancellation among the failures). The child's work throws at once,
 * with no checkpoint before: once it started, it fails. Which came first is told by the group's
 * cancel reason (the first one is kept): the explicit reason, or the failure's.
 */
@JCStressTest
@Description("TaskGroup.cancel() from another thread against a child that fails")
@Outcome(
    id = "failure reported, cancel first",
    expect = ACCEPTABLE,
    desc =
        "cancel() came first; the child had started and failed anyway: run threw"
            + " TaskGroupException holding exactly that failure.")
@Outcome(
    id = "failure reported, failure first",
    expect = ACCEPTABLE,
    desc =
        "The failure came first (it cancelled the group); cancel() later: run threw"
            + " TaskGroupException holding exactly that failure.")
@Outcome(
    id = "not started, caught",
    expect = ACCEPTABLE,
    desc =
        "cancel() came before the child started: its work never ran, so nothing failed; run"
            + " returned normally and caught the cancellation.")
@Outcome(
    id = "failure lost",
    expect = FORBIDDEN,
    desc = "The child's work ran and threw, yet run returned normally (a failure is never lost).")
@Outcome(
    id = "cancellation among failures",
    expect = FORBIDDEN,
    desc =
        "failures() holds an InterruptedException or CancellationException (a cancellation is never a failure).")
@Outcome(
    id = "failures wrong: .*",
    expect = FORBIDDEN,
    desc = "failures() is not exactly the child's one failure (lost, duplicated or wrapped).")
@Outcome(
    id = "run threw .*",
    expect = FORBIDDEN,
    desc = "run threw something other than TaskGroupException, or threw although nothing failed.")
@Outcome(
    id = "interrupt left",
    expect = FORBIDDEN,
    desc = "The owner's interrupt status was set after run ended.")
@Outcome(
    id = "caught lost",
    expect = FORBIDDEN,
    desc = "The child never started because of the cancel, yet cancelCaught() is false.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned and checked.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class CancelVersusFailure {
  private static final String REASON = "jcstress cancel";

  private final TaskGroup group = TaskGroup.create();
  private final Race.Boom boom = new Race.Boom();
  private volatile boolean workStarted;

  private String runThrew;
  private List<Throwable> failures;
  private boolean interruptLeft;

  /** Set when the owner's thread arrives with an interrupt left by an earlier instance. */
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      group.run(
          () -> {
            group.fork(
                () -> {
                  workStarted = true;
                  throw boom;
                });
          });
    } catch (TaskGroupException e) {
      failures = e.failures();
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    interruptLeft = Thread.interrupted();
  }

  @Actor
  public void canceller() {
    group.cancel(REASON);
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
      return "interrupt left";
    }
    if (failures == null) {
      if (workStarted) {
        return "failure lost";
      }
      return group.cancelCaught() ? "not started, caught" : "caught lost";
    }
    for (Throwable f : failures) {
      if (f instanceof InterruptedException || f instanceof CancellationException) {
        return "cancellation among failures";
      }
    }
    if (failures.size() != 1 || failures.get(0) != boom) {
      return "failures wrong: " + failures.size() + " " + failures;
    }
    if (!workStarted) {
      return "run threw TaskGroupException without a failure";
    }
    Optional<String> reason = group.cancelScope().cancelReason();
    return reason.equals(Optional.of(REASON))
        ? "failure reported, cancel first"
        : "failure reported, failure first";
  }
}
