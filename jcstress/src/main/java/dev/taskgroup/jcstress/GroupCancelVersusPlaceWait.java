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
 * outside the group, arriving to wait for the place, against the group's cancellation, while the
 * child holding the place keeps it until that fork has returned. The cancellation does not
 * interrupt the outsider; it wakes the forks waiting for a place, and a fork into a cancelled group
 * starts nothing. The wake-up is a store on one side and a load on the other: the fork publishes
 * itself as its ticket's waiter and then looks at the group; the cancellation marks the group and
 * then looks for the waiters. A wrong fence shows as a fork that never returns (nothing else would
 * wake it: the holder keeps its place). The group's body cancels it a random 0 to 3 microseconds
 * after the fork began. Threads that only wait block (latches) rather than spin: the holder is a
 * virtual thread and needs a carrier on this 2-core machine.
 */
@JCStressTest
@Description("A fork from outside waiting for a place against the group's cancel")
@Outcome(
    id = "not run",
    expect = ACCEPTABLE,
    desc = "The fork stopped waiting: the task is CANCELLED and its work never ran.")
@Outcome(
    id = "hung",
    expect = FORBIDDEN,
    desc =
        "The fork was still waiting 10 s after the group was cancelled: the wake-up was lost (the"
            + " fork was then interrupted to end the instance).")
@Outcome(id = "ran", expect = FORBIDDEN, desc = "The child ran: the holder never gave its place.")
@Outcome(id = "state .*", expect = FORBIDDEN, desc = "The task is not CANCELLED.")
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
public class GroupCancelVersusPlaceWait {
  private final TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
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
                  // Keeps the place through the cancellation, until the outsider's fork returned.
                  CancelScope.shielded().run(() -> Race.awaitLatch(fork.returned));
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
