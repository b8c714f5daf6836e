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
 * A fork against the cancellation walk, where neither side pays a fence: the fork links its child
 * with release stores, and the walk reads the group's first child under the list's lock. The
 * group's body forks one child while another thread cancels the group. Either the child sees the
 * cancellation when its thread starts (the work never runs), or the walk finds it in the group's
 * list and interrupts it before {@code cancel()} returns. The work waits until {@code cancel()} has
 * returned and then looks at its interrupt status, without any checkpoint (which would see the
 * group's flag and hide a missed interrupt).
 */
@JCStressTest
@Description(
    "fork() in the body against TaskGroup.cancel(): the child is interrupted or never runs")
@Outcome(
    id = "not run",
    expect = ACCEPTABLE,
    desc = "The child saw the cancellation when it started (or the fork came after it): no work.")
@Outcome(
    id = "interrupted",
    expect = ACCEPTABLE,
    desc = "The work ran; by the time cancel() returned, the walk had interrupted its thread.")
@Outcome(
    id = "missed",
    expect = FORBIDDEN,
    desc =
        "The work ran, cancel() returned, and no interrupt came: the walk missed the child and the"
            + " child missed the cancellation.")
@Outcome(
    id = "cancel never returned",
    expect = FORBIDDEN,
    desc = "The work waited for cancel() to return past the bound.")
@Outcome(id = "run threw .*", expect = FORBIDDEN, desc = "A group absorbs its own cancel().")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class ForkVersusCancelWalk {
  private final TaskGroup group = TaskGroup.create();
  private volatile boolean cancelReturned;
  private volatile String seen = "not run";

  // Written by the owner actor, read by the arbiter.
  private String runThrew;
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      group.run(
          () ->
              group.fork(
                  () -> {
                    if (!Race.await(() -> cancelReturned)) {
                      seen = "cancel never returned";
                    } else {
                      seen = Thread.currentThread().isInterrupted() ? "interrupted" : "missed";
                    }
                  }));
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
  }

  @Actor
  public void canceller() {
    group.cancel();
    cancelReturned = true;
  }

  @Arbiter
  public void arbiter(L_Result r) {
    if (staleInterrupt) {
      r.r1 = "interrupt landed late";
    } else if (runThrew != null) {
      r.r1 = "run threw " + runThrew;
    } else {
      r.r1 = seen;
    }
  }
}
