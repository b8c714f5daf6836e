package dev.taskgroup.jcstress;

import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;

/**
 * The fork from outside of the place-wait races (PlaceGrantVersusWait, GroupCancelVersusPlaceWait,
 * PlaceGrantVersusGroupCancel): a thread that is not in the group forks into it once the child
 * holding the only place runs, and so waits for that place. One per test instance; the owner's body
 * bounds its wait for the fork, and a fork that never returns is interrupted to end the instance,
 * and judged "hung".
 */
final class OutsideFork {
  /** Opened by the holder as it starts. */
  final CountDownLatch holding = new CountDownLatch(1);

  /** Opened once the fork returned (or the outsider gave up waiting for the holder). */
  final CountDownLatch returned = new CountDownLatch(1);

  /** Set just before the fork. */
  volatile boolean forking;

  private volatile boolean workRan;
  private volatile Thread thread;

  private boolean gaveUp;
  private boolean hung;
  private String forkThrew;
  private boolean interruptedAfter;
  private Task<Boolean> task;

  /**
   * The outsider's actor: waits (blocked) for the holder, then forks a child that records it ran.
   */
  void run(TaskGroup group) {
    thread = Thread.currentThread();
    if (!Race.awaitLatch(holding)) {
      gaveUp = true;
      returned.countDown();
      return;
    }
    forking = true;
    try {
      task =
          group.fork(
              () -> {
                workRan = true;
                return true;
              });
    } catch (Throwable t) {
      forkThrew = Race.name(t);
    }
    returned.countDown();
    interruptedAfter = Thread.interrupted(); // cleared: the thread runs later instances
  }

  /**
   * The owner's bounded wait for the fork to return (blocked, whatever interrupts come: call it in
   * a shield if the group may be cancelled). Past the bound the fork is judged hung and
   * interrupted, so that the instance ends.
   */
  void awaitReturn() {
    if (!Race.awaitLatch(returned)) {
      hung = true;
      thread.interrupt();
      Race.awaitLatch(returned);
    }
  }

  /**
   * The verdict: "gave up", "hung", "run threw X" (for {@code runThrew}), "fork threw X", "outsider
   * interrupted" (nothing interrupts it but a hang), a state that does not match whether the work
   * ran, or else "ran" (SUCCESS) or "not run" (CANCELLED).
   */
  String verdict(String runThrew) {
    if (gaveUp) {
      return "gave up";
    }
    if (hung) {
      return "hung";
    }
    if (runThrew != null) {
      return "run threw " + runThrew;
    }
    if (forkThrew != null) {
      return "fork threw " + forkThrew;
    }
    if (interruptedAfter) {
      return "outsider interrupted";
    }
    Future.State state = task.state();
    if (workRan) {
      return state == Future.State.SUCCESS ? "ran" : "state " + state + " after the work ran";
    }
    return state == Future.State.CANCELLED ? "not run" : "state " + state + " without the work";
  }
}
