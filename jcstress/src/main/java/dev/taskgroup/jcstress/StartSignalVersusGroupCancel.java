package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.CancelScope;
import dev.taskgroup.StartSignal;
import dev.taskgroup.TaskGroup;
import java.util.concurrent.atomic.AtomicInteger;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * {@code StartSignal.started()}, called by the work on its own thread, against the group's {@code
 * cancel()}, for a caller of {@code start} inside a shield (TaskGroup.start's javadoc: until the
 * work signals it is cancelled with its caller, after it with its group). (Two actors: the owner,
 * whose work signals, and the canceller; jcstress cannot schedule three on two CPUs.) The
 * cancellation walk skips work that has not signalled and is not cancelled through its caller; the
 * signal moves the work under the group and then looks at the group. Whichever comes first, the
 * work must be cancelled once it has signalled: interrupted, and its {@code onCancel} action run
 * exactly once, never before the signal.
 */
@JCStressTest
@Description("StartSignal.started() against TaskGroup.cancel(), the caller of start shielded")
@Outcome(
    id = "work cancelled",
    expect = ACCEPTABLE,
    desc = "The work signalled, was interrupted, and its onCancel action ran once.")
@Outcome(
    id = "work not interrupted",
    expect = FORBIDDEN,
    desc = "The work signalled into a cancelled group and no interrupt reached it.")
@Outcome(
    id = "hook ran .*",
    expect = FORBIDDEN,
    desc = "The work's onCancel action ran a number of times other than once.")
@Outcome(
    id = "hook before signal",
    expect = FORBIDDEN,
    desc =
        "The action ran before the work signalled, though its shielded caller was not cancelled.")
@Outcome(id = "hung", expect = FORBIDDEN, desc = "An actor gave up waiting (bounded).")
@Outcome(
    id = "run threw .*",
    expect = FORBIDDEN,
    desc = "The owner's run did not return normally: a group's own cancel() is not a failure.")
@Outcome(
    id = "interrupt landed late",
    expect = FORBIDDEN,
    desc =
        "The owner's thread started this instance with its interrupt status set: an interrupt"
            + " meant for an earlier instance landed after that instance had returned.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class StartSignalVersusGroupCancel {
  private final TaskGroup group = TaskGroup.create();
  private final AtomicInteger hookRuns = new AtomicInteger();
  private volatile StartSignal<String> signal;
  private volatile boolean signalled;
  private volatile boolean hookBeforeSignal;
  private volatile boolean interrupted;

  private boolean gaveUp;
  private String runThrew;
  private boolean staleInterrupt;

  @Actor
  public void owner() {
    staleInterrupt = Thread.interrupted();
    try {
      group.run(
          () ->
              CancelScope.shielded()
                  .run(
                      () ->
                          group.start(
                              (StartSignal<String> s) -> {
                                try (var unused =
                                    CancelScope.onCancel(
                                        () -> {
                                          if (!signalled) {
                                            hookBeforeSignal = true;
                                          }
                                          hookRuns.incrementAndGet();
                                        })) {
                                  signal = s; // the canceller starts now
                                  signalled = true; // before started(): its hook may run at once
                                  s.started("ready");
                                  interrupted =
                                      Race.await(() -> Thread.currentThread().isInterrupted());
                                  gaveUp |= !interrupted;
                                  Race.await(() -> hookRuns.get() > 0);
                                }
                              })));
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
    Thread.interrupted();
  }

  @Actor
  public void canceller() {
    if (!Race.await(() -> signal != null)) {
      gaveUp = true;
      return;
    }
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
    if (hookBeforeSignal) {
      return "hook before signal";
    }
    if (!interrupted) {
      return gaveUp ? "work not interrupted" : "hung";
    }
    if (gaveUp) {
      return "hung";
    }
    return hookRuns.get() == 1 ? "work cancelled" : "hook ran " + hookRuns.get();
  }
}
