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
 * An outer scope cancelled by another thread while the thread running an inner scope turns that
 * scope's shield on, passes a checkpoint, and turns it off again (docs/guide.md, "Shields"; 15).
 * Turning the shield on from the thread that runs the scope drops the library's interrupt for the
 * cancellation above, so the checkpoint under the shield must pass. Once the inner scope has ended
 * with the shield off while the outer is cancelled, the outer's next checkpoint must throw, and the
 * outer (the outermost cancelled scope) absorbs it.
 */
@JCStressTest
@Description(
    "CancelScope.setShielded on/off by the scope's own thread against cancel() of the outer")
@Outcome(
    id = "cancelled, caught",
    expect = ACCEPTABLE,
    desc =
        "The outer was cancelled before the owner's checkpoint in it (while the shield was on,"
            + " or not): that checkpoint threw and the outer caught the cancellation.")
@Outcome(
    id = "cancelled after last checkpoint",
    expect = ACCEPTABLE,
    desc =
        "cancel() came after the outer's checkpoint: the outer's body returned normally,"
            + " cancelCaught() false (it may or may not have been cancelled before exit).")
@Outcome(
    id = "shielded checkpoint threw .*",
    expect = FORBIDDEN,
    desc =
        "A checkpoint under the shield, just turned on by its own thread, threw: the"
            + " cancellation above got through (CancelledException), or the interrupt delivered for"
            + " it was not dropped (a plain InterruptedException) (a shield drops the library's interrupt).")
@Outcome(
    id = "checkpoint passed after cancel",
    expect = FORBIDDEN,
    desc =
        "The inner scope had ended with the shield off, the outer was seen cancelled, and a"
            + " checkpoint in the outer passed.")
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
public class ShieldToggleVersusCancel {
  private final CancelScope outer = CancelScope.create();
  private final CancelScope inner = CancelScope.create();

  private String shieldedCheckpointThrew;
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
                  inner.setShielded(true);
                  try {
                    CancelScope.checkpoint();
                  } catch (InterruptedException e) {
                    shieldedCheckpointThrew = Race.name(e);
                    throw e;
                  }
                  inner.setShielded(false);
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
  public void canceller() {
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
    if (shieldedCheckpointThrew != null) {
      return "shielded checkpoint threw " + shieldedCheckpointThrew;
    }
    if (cancelSeen && !outerCheckpointThrew) {
      return "checkpoint passed after cancel";
    }
    if (interruptLeft) {
      return "interrupt left, " + (outerCheckpointThrew ? "cancelled" : "returned");
    }
    if (outerThrew != null) {
      return "outer threw " + outerThrew;
    }
    boolean caught = outer.cancelCaught();
    if (outerCheckpointThrew) {
      return caught ? "cancelled, caught" : "caught lost";
    }
    if (outerBodyReturned) {
      return caught ? "caught without throw" : "cancelled after last checkpoint";
    }
    return "neither returned nor threw";
  }
}
