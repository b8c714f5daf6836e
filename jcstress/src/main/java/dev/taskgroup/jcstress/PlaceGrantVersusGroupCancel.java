package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import dev.taskgroup.CancelScope;
import dev.taskgroup.TaskGroup;
import java.util.concurrent.ThreadLocalRandom;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.L_Result;

/**
 * Under {@code maxConcurrency(1)} (docs/guide.md, "Bounded concurrency"): a fork from a thread
 * outside the group, waiting for the place, woken twice at about the same moment: by the child
 * holding the place, which ends and hands it over, and by the group's cancellation, which wakes the
 * forks waiting for a place (a fork into a cancelled group starts nothing). The fork must end
 * either way: with the place (then it sees the cancellation and starts nothing, or its child ran
 * before the cancellation) or without it, and never wait for a wake-up that was already used up
 * (say, by the lock it takes to withdraw its ticket). The holder ends a random 0 to 3 microseconds
 * after the fork began; the group's body cancels it after another random 0 to 3 microseconds.
 * Threads that only wait block (latches) rather than spin: the holder is a virtual thread and needs
 * a carrier on this 2-core machine.
 */
@JCStressTest
@Description("A fork from outside waiting for a place against its grant and the group's cancel")
@Outcome(
    id = "ran",
    expect = ACCEPTABLE,
    desc = "The place went to the fork and its child started before the cancellation (SUCCESS).")
@Outcome(
    id = "not run",
    expect = ACCEPTABLE,
    desc = "The task is CANCELLED and its work never ran (with the place or without it).")
@Outcome(
    id = "hung",
    expect = FORBIDDEN,
    desc =
        "The fork was still waiting 10 s after the holder ended and the group was cancelled: both"
            + " wake-ups were lost (the fork was then interrupted to end the instance).")
@Outcome(
    id = "state .*",
    expect = FORBIDDEN,
    desc = "The task's state does not match whether its work ran (ran: SUCCESS; not: CANCELLED).")
@Outcome(id = "fork threw .*", expect = FORBIDDEN, desc = "fork threw.")
@Outcome(id = "run threw .*", expect = FORBIDDEN, desc = "run did not return normally.")
@Outcome(
    id = "outsider interrupted",
    expect = FORBIDDEN,
    desc =
        "The outsider's interrupt status was set after its fork returned: nothing interrupts it.")
@Outcome(
    id = "gave up",
    expect = FORBIDDEN,
    desc = "A bounded wait (10 s) for the holder to start gave up.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class PlaceGrantVersusGroupCancel {
  private final TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
  private final long holdNanos = ThreadLocalRandom.current().nextLong(3_000L);
  private final long cancelAfterNanos = ThreadLocalRandom.current().nextLong(3_000L);
  private final OutsideFork fork = new OutsideFork();
  private String runThrew;

  @Actor
  public void owner() {
    try {
      group.run(
          () -> {
            group.fork(
                () -> {
                  fork.holding.countDown();
                  Race.await(() -> fork.forking);
                  Race.spinFor(holdNanos); // no checkpoint: ends on its own, handing its place on
                });
            if (Race.await(() -> fork.forking)) {
              Race.spinFor(cancelAfterNanos);
              group.cancel();
            }
            CancelScope.shielded().run(fork::awaitReturn); // the body is cancelled now
          });
    } catch (Throwable t) {
      runThrew = Race.name(t);
    }
  }

  @Actor
  public void outsider() {
    fork.run(group);
  }

  @Arbiter
  public void arbiter(L_Result r) {
    r.r1 = fork.verdict(runThrew);
  }
}
