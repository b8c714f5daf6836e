package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

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
 * {@code cancel()} against a child completing with a value, while the body waits for it in {@code
 * get()} (a result that arrived may be returned; no result is lost to a race).
 */
@JCStressTest
@Description("TaskGroup.cancel() from another thread against a child returning a value")
@Outcome(
    id = "SUCCESS, get returned it",
    expect = ACCEPTABLE,
    desc = "The child completed and the body's get() returned its value.")
@Outcome(
    id = "SUCCESS, get interrupted",
    expect = ACCEPTABLE,
    desc =
        "The body was cancelled while waiting in get(); the child still completed, and its"
            + " task keeps the value.")
@Outcome(
    id = "CANCELLED, get cancelled",
    expect = ACCEPTABLE,
    desc =
        "cancel() came first: the child never started, its task is CANCELLED and get() threw"
            + " CancellationException.")
@Outcome(
    id = "CANCELLED, get interrupted",
    expect = ACCEPTABLE,
    desc =
        "The child never started (cancelled before it began) and the body's get() was"
            + " interrupted by the same cancellation.")
@Outcome(
    id = "result lost",
    expect = FORBIDDEN,
    desc = "get() returned the value but the task does not report SUCCESS with it.")
@Outcome(
    id = "wrong value",
    expect = FORBIDDEN,
    desc = "get() or resultNow() returned something other than the child's value.")
@Outcome(
    id = "get .* but .*",
    expect = FORBIDDEN,
    desc = "What get() reported contradicts the task's final state (state moves once).")
@Outcome(
    id = "bad state .*",
    expect = FORBIDDEN,
    desc = "The task ended neither SUCCESS nor CANCELLED (or was not done after run returned).")
@Outcome(
    id = "run threw .*",
    expect = FORBIDDEN,
    desc = "run did not return normally: a group absorbs its own cancel().")
@Outcome(
    id = "interrupt left",
    expect = FORBIDDEN,
    desc = "The owner's interrupt status was set after run returned.")
@Outcome(
    id = "caught lost",
    expect = FORBIDDEN,
    desc = "Something was cancelled inside the open group, yet cancelCaught() is false.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned and checked.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class CancelVersusResult {
  private static final Integer RESULT = 42;

  private final TaskGroup group = TaskGroup.create();
  private volatile Task<Integer> task;

  /** What the body's get() did: "returned it", "interrupted", "cancelled", or a problem. */
  private volatile String got;

  private String runThrew;
  private boolean interruptLeft;

  /** Set when the owner's thread arrives with an interrupt left by an earlier instance. */
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      group.run(
          () -> {
            Task<Integer> t = group.fork(() -> RESULT);
            task = t;
            try {
              Integer v = t.get();
              got = RESULT.equals(v) ? "returned it" : "wrong value";
            } catch (InterruptedException e) {
              got = "interrupted";
              throw e; // the body is cut short; the group absorbs its own cancellation
            } catch (CancellationException e) {
              got = "cancelled";
            } catch (ExecutionException e) {
              got = "failed";
            }
          });
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    interruptLeft = Thread.interrupted();
  }

  @Actor
  public void canceller() {
    group.cancel();
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
    Task<Integer> t = task;
    String g = got;
    if (t == null || g == null) {
      return "bad state: body did not fork and get";
    }
    if (g.equals("wrong value")) {
      return g;
    }
    Future.State state = t.state();
    boolean caught = group.cancelCaught();
    switch (state) {
      case SUCCESS -> {
        if (!RESULT.equals(t.resultNow())) {
          return "wrong value";
        }
        if (g.equals("returned it")) {
          return "SUCCESS, get returned it";
        }
        if (g.equals("interrupted")) {
          return caught ? "SUCCESS, get interrupted" : "caught lost";
        }
        return "get " + g + " but SUCCESS";
      }
      case CANCELLED -> {
        if (g.equals("returned it")) {
          return "result lost";
        }
        if (!caught) {
          return "caught lost";
        }
        if (g.equals("cancelled") || g.equals("interrupted")) {
          return "CANCELLED, get " + g;
        }
        return "get " + g + " but CANCELLED";
      }
      default -> {
        return "bad state " + state;
      }
    }
  }
}
