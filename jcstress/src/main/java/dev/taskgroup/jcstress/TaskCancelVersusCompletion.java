package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.CancelScope;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * {@code Task.cancel} from another thread against the task completing (the Task javadoc and section
 * 3: once {@code cancel} returns true the state is {@code CANCELLED} and a late result is dropped).
 * The body forks the child, publishes its task, and waits (bounded) until the other actor is done
 * with it; the child passes a checkpoint and returns a value.
 */
@JCStressTest
@Description("Task.cancel(true) from another thread against the task's completion")
@Outcome(
    id = "cancelled before start",
    expect = ACCEPTABLE,
    desc = "cancel returned true before the work began: it never ran; CANCELLED.")
@Outcome(
    id = "cancelled, cut short",
    expect = ACCEPTABLE,
    desc = "cancel returned true while the work ran: its checkpoint threw; CANCELLED.")
@Outcome(
    id = "cancelled, late result dropped",
    expect = ACCEPTABLE,
    desc =
        "cancel returned true just before the work returned its value: the value is dropped;"
            + " CANCELLED.")
@Outcome(
    id = "completed first",
    expect = ACCEPTABLE,
    desc = "The work completed first: cancel returned false; SUCCESS and get() returns the value.")
@Outcome(
    id = "cancel true but .*",
    expect = FORBIDDEN,
    desc =
        "cancel returned true, yet the state (right after, or at the end) is not CANCELLED, or"
            + " get() did not throw CancellationException.")
@Outcome(
    id = "cancel false but .*",
    expect = FORBIDDEN,
    desc = "cancel returned false, yet the task is not SUCCESS with its value.")
@Outcome(
    id = "group cancelled",
    expect = FORBIDDEN,
    desc = "Task.cancel cancelled the whole group (cancelCalled() or cancelCaught() true).")
@Outcome(id = "run threw .*", expect = FORBIDDEN, desc = "run did not return normally.")
@Outcome(
    id = "interrupt left",
    expect = FORBIDDEN,
    desc = "The owner's interrupt status was set after run returned.")
@Outcome(
    id = "hung",
    expect = FORBIDDEN,
    desc = "A bounded wait (10 s) for the other actor gave up.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned and checked.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class TaskCancelVersusCompletion {
  private static final Integer RESULT = 42;

  private final TaskGroup group = TaskGroup.create();
  private volatile Task<Integer> task;
  private volatile boolean otherDone;
  private volatile boolean workStarted;
  private volatile boolean workReturning;

  private boolean ownerGaveUp;
  private String runThrew;
  private boolean interruptLeft;

  private boolean otherGaveUp;
  private boolean cancelled;
  private Future.State stateAfterCancel;
  private String got;

  /** Set when the owner's thread arrives with an interrupt left by an earlier instance. */
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      group.run(
          () -> {
            task =
                group.fork(
                    () -> {
                      workStarted = true;
                      CancelScope.checkpoint();
                      workReturning = true;
                      return RESULT;
                    });
            ownerGaveUp = !Race.await(() -> otherDone);
          });
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    interruptLeft = Thread.interrupted();
  }

  @Actor
  public void other() {
    if (!Race.await(() -> task != null)) {
      otherGaveUp = true;
      otherDone = true;
      return;
    }
    Task<Integer> t = task;
    cancelled = t.cancel(true);
    stateAfterCancel = t.state();
    try {
      got = RESULT.equals(t.get()) ? "value" : "wrong value";
    } catch (CancellationException e) {
      got = "cancelled";
    } catch (ExecutionException e) {
      got = "failed";
    } catch (InterruptedException e) {
      got = "interrupted";
    }
    otherDone = true;
  }

  @Arbiter
  public void arbiter(L_Result r) {
    r.r1 = verdict();
  }

  private String verdict() {
    if (staleInterrupt) {
      return "interrupt landed late";
    }
    if (ownerGaveUp || otherGaveUp) {
      return "hung";
    }
    if (runThrew != null) {
      return "run threw " + runThrew;
    }
    if (interruptLeft) {
      return "interrupt left";
    }
    if (group.cancelCalled() || group.cancelCaught()) {
      return "group cancelled";
    }
    Future.State end = task.state();
    if (cancelled) {
      if (stateAfterCancel != Future.State.CANCELLED || end != Future.State.CANCELLED) {
        return "cancel true but " + stateAfterCancel + " then " + end;
      }
      if (!got.equals("cancelled")) {
        return "cancel true but get " + got;
      }
      if (!workStarted) {
        return "cancelled before start";
      }
      return workReturning ? "cancelled, late result dropped" : "cancelled, cut short";
    }
    if (end != Future.State.SUCCESS || !got.equals("value") || !RESULT.equals(task.resultNow())) {
      return "cancel false but " + end + ", get " + got;
    }
    return "completed first";
  }
}
