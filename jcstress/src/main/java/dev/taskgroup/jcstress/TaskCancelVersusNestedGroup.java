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
 * {@code Task.cancel()} against the task entering a group of its own and forking into it. The
 * cancellation walk goes down from the task's root to the groups its thread is inside, and from
 * there to their children; a task's root finds the first scope below it from the thread's innermost
 * one. Whichever way the race goes, a grandchild that started must be interrupted: by the walk, or
 * because its group was already cancelled when it was forked (then it never runs).
 */
@JCStressTest
@Description("Task.cancel() against the task entering a nested group and forking a grandchild")
@Outcome(
    id = "grandchild interrupted",
    expect = ACCEPTABLE,
    desc = "The grandchild ran and the cancellation reached it.")
@Outcome(
    id = "grandchild never ran",
    expect = ACCEPTABLE,
    desc = "The cancel came first: the nested group was cancelled and its fork never ran.")
@Outcome(
    id = "grandchild not interrupted",
    expect = FORBIDDEN,
    desc = "The grandchild ran and no interrupt reached it: the walk missed the nested group.")
@Outcome(id = "hung", expect = FORBIDDEN, desc = "An actor gave up waiting (bounded).")
@Outcome(
    id = "run threw .*",
    expect = FORBIDDEN,
    desc = "The owner's run did not return normally: a Task.cancel() is not a failure.")
@Outcome(
    id = "task .*",
    expect = FORBIDDEN,
    desc = "Task.cancel() returned true, but the task did not end CANCELLED.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class TaskCancelVersusNestedGroup {
  private final TaskGroup group = TaskGroup.create();
  private volatile Task<Void> task;
  private volatile boolean otherDone;

  private volatile boolean grandchildRan;
  private volatile boolean grandchildInterrupted;

  private boolean ownerGaveUp;
  private boolean otherGaveUp;
  private boolean cancelled;
  private String runThrew;

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
                    "child",
                    () -> {
                      TaskGroup nested = TaskGroup.create();
                      nested.run(
                          () -> {
                            nested.fork(
                                "grandchild",
                                () -> {
                                  grandchildRan = true;
                                  grandchildInterrupted =
                                      Race.await(() -> Thread.currentThread().isInterrupted());
                                });
                          });
                    });
            ownerGaveUp = !Race.await(() -> otherDone);
          });
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    Thread.interrupted();
  }

  @Actor
  public void other() {
    if (!Race.await(() -> task != null)) {
      otherGaveUp = true;
      otherDone = true;
      return;
    }
    cancelled = task.cancel(true);
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
    if (cancelled && task.state() != Future.State.CANCELLED) {
      return "task " + task.state();
    }
    if (!cancelled) {
      return "not cancelled: " + task.state(); // the child waits for its grandchild: never
    }
    if (!grandchildRan) {
      return "grandchild never ran";
    }
    return grandchildInterrupted ? "grandchild interrupted" : "grandchild not interrupted";
  }
}
