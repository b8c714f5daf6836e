package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.CancelScope;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * Another thread turns on the shield of the inner scope the owner is entering or running, and then
 * cancels the outer scope (docs/guide.md, "Shields"). The shield goes up before the cancel, so
 * whenever the owner is inside the inner scope either nothing above is cancelled or the shield
 * keeps it out; if the owner was still in the outer when the cancel was delivered, entering the
 * shielded scope drops that interrupt. The inner checkpoint must therefore always pass. After the
 * inner scope the outer's checkpoint throws if the outer was cancelled.
 */
@JCStressTest
@Description("CancelScope.setShielded(true) by another thread, then cancel() of the outer")
@Outcome(
    id = "outer cut short, caught",
    expect = ACCEPTABLE,
    desc =
        "The inner checkpoint passed (shielded, or before the cancel); the outer's checkpoint"
            + " threw and the outer caught the cancellation.")
@Outcome(
    id = "cancelled after last checkpoint",
    expect = ACCEPTABLE,
    desc =
        "cancel() came after the outer's checkpoint: the outer's body returned normally,"
            + " cancelCaught() false.")
@Outcome(
    id = "inner checkpoint threw .*",
    expect = FORBIDDEN,
    desc =
        "The checkpoint in the inner scope threw, although the shield went up before the"
            + " outer was cancelled: the cancellation (CancelledException) or its interrupt (a plain"
            + " InterruptedException) got through the shield.")
@Outcome(
    id = "checkpoint passed after cancel",
    expect = FORBIDDEN,
    desc = "The outer was seen cancelled after the inner scope ended, yet its checkpoint passed.")
@Outcome(
    id = "interrupt left, .*",
    expect = FORBIDDEN,
    desc = "The thread's interrupt status was set after the outer scope exited.")
@Outcome(
    id = "outer threw .*",
    expect = FORBIDDEN,
    desc = "The outer scope's run threw: it is the outermost cancelled scope and must absorb.")
@Outcome(
    id = "caught lost",
    expect = FORBIDDEN,
    desc = "The outer's checkpoint threw its cancellation, yet cancelCaught() is false.")
@Outcome(
    id = "caught without throw",
    expect = FORBIDDEN,
    desc = "The outer's body returned normally, yet cancelCaught() is true.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned and checked.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class ShieldOnFromOtherThread {
  private final CancelScope outer = CancelScope.create();
  private final CancelScope inner = CancelScope.create();

  private String innerThrew;
  private boolean cancelSeen;
  private boolean outerCheckpointThrew;
  private boolean outerBodyReturned;
  private String outerThrew;
  private boolean interruptLeft;

  /** Set when the owner's thread arrives with an interrupt left by an earlier instance. */
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      outer.run(
          () -> {
            inner.run(
                () -> {
                  try {
                    CancelScope.checkpoint();
                  } catch (InterruptedException e) {
                    innerThrew = Race.name(e);
                    throw e;
                  }
                });
            cancelSeen = outer.cancelCalled();
            try {
              CancelScope.checkpoint();
            } catch (InterruptedException e) {
              outerCheckpointThrew = true;
              throw e;
            }
            outerBodyReturned = true;
          });
    } catch (Throwable t) {
      outerThrew = Race.name(t);
    }
    interruptLeft = Thread.interrupted();
  }

  @Actor
  public void other() {
    inner.setShielded(true);
    outer.cancel();
  }

  @Arbiter
  public void arbiter(L_Result r) {
    r.r1 = verdict();
  }

  private String verdict() {
    if (staleInterrupt) {
      return "interrupt landed late";
    }
    if (innerThrew != null) {
      return "inner checkpoint threw " + innerThrew;
    }
    if (cancelSeen && !outerCheckpointThrew) {
      return "checkpoint passed after cancel";
    }
    if (interruptLeft) {
      return "interrupt left, " + (outerBodyReturned ? "returned" : "cancelled");
    }
    if (outerThrew != null) {
      return "outer threw " + outerThrew;
    }
    boolean caught = outer.cancelCaught();
    if (outerCheckpointThrew) {
      return caught ? "outer cut short, caught" : "caught lost";
    }
    if (outerBodyReturned) {
      return caught ? "caught without throw" : "cancelled after last checkpoint";
    }
    return "neither returned nor threw";
  }
}
