package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.CancelScope;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.util.concurrent.Future;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * {@code cancel()} against {@code fork}: the group's body forks one child while another thread
 * cancels the group (docs/guide.md, "Cancelling a group").
 *
 * <p>What can be observed about "cancel() happened before run returned": nothing outside the group
 * can tell whether a cancel() that returned just before {@code run} returned was counted (the group
 * may already have exited). What can be told is that cancel() had returned when code
 * <em>inside</em> the open group looked: the body (before or after its fork) or the child's work.
 * Then the group was open and cancelled, so it must catch: {@code cancelCaught()} true. Likewise a
 * child that ended {@code CANCELLED} was cancelled while the group was open.
 */
@JCStressTest
@Description("TaskGroup.cancel() from another thread against fork() in the body")
@Outcome(
    id = "not started, caught",
    expect = ACCEPTABLE,
    desc =
        "cancel() reached the group before (or while) the child started: the task is CANCELLED"
            + " and its work never ran; run returned normally and caught the cancellation.")
@Outcome(
    id = "cut short, caught",
    expect = ACCEPTABLE,
    desc =
        "The work started and its checkpoint threw: the task is CANCELLED; run returned"
            + " normally and caught the cancellation.")
@Outcome(
    id = "completed, caught",
    expect = ACCEPTABLE,
    desc =
        "The work passed its checkpoint and returned (SUCCESS, result kept); cancel() reached"
            + " the group before it exited, so run caught it.")
@Outcome(
    id = "completed, after exit",
    expect = ACCEPTABLE,
    desc =
        "The work completed; cancel() came after the group exited: cancelCaught() false,"
            + " cancelCalled() true.")
@Outcome(
    id = "run threw .*",
    expect = FORBIDDEN,
    desc = "run did not return normally: a group absorbs its own cancel().")
@Outcome(
    id = "interrupt left",
    expect = FORBIDDEN,
    desc =
        "The owner's interrupt status was set after run returned (the group leaves no interrupt on its caller).")
@Outcome(
    id = "work outlived run",
    expect = FORBIDDEN,
    desc =
        "The child's work was still running, or started, after run returned (run never returns while a child runs).")
@Outcome(
    id = "work ran after cancel returned",
    expect = FORBIDDEN,
    desc =
        "cancel() had returned before fork was called, yet fork started the work (a fork into a cancelled group does not start:"
            + " fork into a cancelled group returns a CANCELLED task without starting it).")
@Outcome(
    id = "caught lost",
    expect = FORBIDDEN,
    desc =
        "cancel() was seen from inside the open group (or a child ended CANCELLED), yet"
            + " cancelCaught() is false.")
@Outcome(
    id = "bad task: .*",
    expect = FORBIDDEN,
    desc =
        "The task ended neither CANCELLED nor SUCCESS with its result, or SUCCESS without its"
            + " work having run.")
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
public class CancelVersusFork {
  private static final Integer RESULT = 42;

  private final TaskGroup group = TaskGroup.create();
  private volatile Task<Integer> task;
  private volatile boolean cancelReturned;
  private volatile boolean cancelSeenBeforeFork;
  private volatile boolean cancelSeenAfterFork;
  private volatile boolean cancelSeenByWork;
  private volatile boolean workStarted;
  private volatile boolean workEnded;
  private volatile boolean runReturned;
  private volatile boolean workRanAfterReturn;

  // Written by the owner actor, read by the arbiter.
  private String runThrew;
  private boolean interruptLeft;
  private boolean startedAtReturn;
  private boolean endedAtReturn;

  /** Set when the owner's thread arrives with an interrupt left by an earlier instance. */
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      group.run(
          () -> {
            cancelSeenBeforeFork = cancelReturned;
            task =
                group.fork(
                    () -> {
                      workStarted = true;
                      try {
                        if (runReturned) {
                          workRanAfterReturn = true;
                        }
                        CancelScope.checkpoint();
                        cancelSeenByWork = cancelReturned;
                        return RESULT;
                      } finally {
                        workEnded = true;
                      }
                    });
            cancelSeenAfterFork = cancelReturned;
          });
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    startedAtReturn = workStarted;
    endedAtReturn = workEnded;
    runReturned = true;
    interruptLeft = Thread.interrupted();
  }

  @Actor
  public void canceller() {
    group.cancel();
    cancelReturned = true;
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
    if ((startedAtReturn && !endedAtReturn)
        || (!startedAtReturn && workStarted)
        || workRanAfterReturn) {
      return "work outlived run";
    }
    if (cancelSeenBeforeFork && workStarted) {
      return "work ran after cancel returned";
    }
    if (!group.cancelCalled()) {
      return "cancelCalled false";
    }
    Task<Integer> t = task;
    if (t == null) {
      return "bad task: none";
    }
    Future.State state = t.state();
    boolean caught = group.cancelCaught();
    boolean seenInside = cancelSeenBeforeFork || cancelSeenAfterFork || cancelSeenByWork;
    switch (state) {
      case CANCELLED -> {
        if (!caught) {
          return "caught lost";
        }
        return workStarted ? "cut short, caught" : "not started, caught";
      }
      case SUCCESS -> {
        if (!workStarted || !RESULT.equals(t.resultNow())) {
          return "bad task: SUCCESS without its result";
        }
        if (seenInside && !caught) {
          return "caught lost";
        }
        return caught ? "completed, caught" : "completed, after exit";
      }
      default -> {
        return "bad task: " + state;
      }
    }
  }
}
