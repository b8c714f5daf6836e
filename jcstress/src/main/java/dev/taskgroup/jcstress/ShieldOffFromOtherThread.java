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
 * Another thread cancels an outer scope and then turns off the shield of the inner scope the owner
 * may be running (the CancelScope.setShielded javadoc: turning the shield off while a scope above
 * is cancelled delivers the cancellation at once). While the inner scope is still shielded a
 * checkpoint in it must pass, even if the owner entered it with the cancellation's interrupt
 * pending (entering a shielded scope drops it). After the inner scope, the outer is cancelled: its
 * checkpoint must throw and the outer absorbs the cancellation.
 */
@JCStressTest
@Description("CancelScope.setShielded(false) by another thread, after cancel() of the outer")
@Outcome(
    id = "inner cut short, caught",
    expect = ACCEPTABLE,
    desc =
        "The shield was off when the owner reached the checkpoint in the inner scope: it threw,"
            + " the inner scope let it through and the outer caught it.")
@Outcome(
    id = "outer cut short, caught",
    expect = ACCEPTABLE,
    desc =
        "The inner checkpoint passed under the shield (or before cancel()); the outer's"
            + " checkpoint threw and the outer caught the cancellation.")
@Outcome(
    id = "cancelled after last checkpoint",
    expect = ACCEPTABLE,
    desc =
        "cancel() came after the outer's checkpoint: the outer's body returned normally,"
            + " cancelCaught() false.")
@Outcome(
    id = "shielded checkpoint threw .*",
    expect = FORBIDDEN,
    desc =
        "A checkpoint in the inner scope threw while the scope was still shielded: the"
            + " cancellation above got through (CancelledException), or an interrupt pending at entry"
            + " was not dropped (a plain InterruptedException).")
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
    desc = "A cancellation reached the outer's exit, yet cancelCaught() is false.")
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
public class ShieldOffFromOtherThread {
  private final CancelScope outer = CancelScope.create();
  private final CancelScope inner = CancelScope.shielded();

  private String innerThrew;
  private boolean shieldedWhenInnerThrew;
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
                    shieldedWhenInnerThrew = inner.isShielded(); // the shield is only ever cleared
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
    outer.cancel();
    inner.setShielded(false);
  }

  @Arbiter
  public void arbiter(L_Result r) {
    r.r1 = verdict();
  }

  private String verdict() {
    if (staleInterrupt) {
      return "interrupt landed late";
    }
    if (innerThrew != null && shieldedWhenInnerThrew) {
      return "shielded checkpoint threw " + innerThrew;
    }
    if (cancelSeen && innerThrew == null && !outerCheckpointThrew) {
      return "checkpoint passed after cancel";
    }
    if (interruptLeft) {
      return "interrupt left, " + (outerBodyReturned ? "returned" : "cancelled");
    }
    if (outerThrew != null) {
      return "outer threw " + outerThrew;
    }
    boolean caught = outer.cancelCaught();
    if (innerThrew != null || outerCheckpointThrew) {
      if (!caught) {
        return "caught lost";
      }
      return innerThrew != null ? "inner cut short, caught" : "outer cut short, caught";
    }
    if (outerBodyReturned) {
      return caught ? "caught without throw" : "cancelled after last checkpoint";
    }
    return "neither returned nor threw";
  }
}
