package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

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
 * {@code fork} from a thread outside the group against the group closing (docs/guide.md,
 * "Cancelling a group" and "Mistakes the library catches"; 19; Group's membership count). Once the
 * body has started, a fork from outside either joins the open group, and then {@code run} waits for
 * the child, or finds it finished and throws {@link IllegalStateException}. A forked child's work
 * never runs after {@code run} returned.
 */
@JCStressTest
@Description("TaskGroup.fork from another thread against the group's close")
@Outcome(
    id = "joined, completed",
    expect = ACCEPTABLE,
    desc = "The fork joined the open group: run waited for the child, which completed (SUCCESS).")
@Outcome(
    id = "rejected, finished",
    expect = ACCEPTABLE,
    desc = "The group had closed: fork threw IllegalStateException naming it finished.")
@Outcome(
    id = "work outlived run",
    expect = FORBIDDEN,
    desc =
        "The forked work was running, or started, after run returned (nothing of a group runs after run returned).")
@Outcome(
    id = "task not done: .*",
    expect = FORBIDDEN,
    desc = "fork returned a task that was not SUCCESS after run returned.")
@Outcome(
    id = "fork threw .*",
    expect = FORBIDDEN,
    desc = "fork threw something other than IllegalStateException for a finished group.")
@Outcome(id = "run threw .*", expect = FORBIDDEN, desc = "run did not return normally.")
@Outcome(
    id = "interrupt left",
    expect = FORBIDDEN,
    desc = "The owner's interrupt status was set after run returned.")
@Outcome(
    id = "hung",
    expect = FORBIDDEN,
    desc = "A bounded wait (10 s) for the body to start gave up.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned and checked.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class ForkVersusClose {
  private static final Integer RESULT = 42;

  /** How long the body lingers after it started, so that forks land around the close. */
  private static final long BODY_NANOS = 5_000L;

  private final TaskGroup group = TaskGroup.create();
  private volatile boolean bodyStarted;
  private volatile boolean runReturned;
  private volatile boolean workStarted;
  private volatile boolean workEnded;
  private volatile boolean workStartedAfterReturn;

  private String runThrew;
  private boolean interruptLeft;
  private boolean startedAtReturn;
  private boolean endedAtReturn;

  private boolean gaveUp;
  private Task<Integer> task;
  private String forkThrew;

  /** Set when the owner's thread arrives with an interrupt left by an earlier instance. */
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      group.run(
          () -> {
            bodyStarted = true;
            Race.spinFor(BODY_NANOS);
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
  public void forker() {
    if (!Race.await(() -> bodyStarted)) {
      gaveUp = true;
      return;
    }
    try {
      task =
          group.fork(
              () -> {
                workStarted = true;
                if (runReturned) {
                  workStartedAfterReturn = true;
                }
                workEnded = true;
                return RESULT;
              });
    } catch (IllegalStateException e) {
      String m = String.valueOf(e.getMessage());
      forkThrew = m.contains("finished") ? "finished" : "IllegalStateException: " + m;
    } catch (Throwable t) {
      forkThrew = Race.name(t);
    }
  }

  @Arbiter
  public void arbiter(L_Result r) {
    r.r1 = verdict();
  }

  private String verdict() {
    if (staleInterrupt) {
      return "interrupt landed late";
    }
    if (gaveUp) {
      return "hung";
    }
    if (runThrew != null) {
      return "run threw " + runThrew;
    }
    if (interruptLeft) {
      return "interrupt left";
    }
    if ((startedAtReturn && !endedAtReturn)
        || (!startedAtReturn && workStarted)
        || workStartedAfterReturn) {
      return "work outlived run";
    }
    if (forkThrew != null) {
      return forkThrew.equals("finished") ? "rejected, finished" : "fork threw " + forkThrew;
    }
    Future.State state = task.state();
    if (state != Future.State.SUCCESS || !RESULT.equals(task.resultNow())) {
      return "task not done: " + state;
    }
    return "joined, completed";
  }
}
