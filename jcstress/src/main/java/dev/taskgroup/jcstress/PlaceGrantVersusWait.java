package dev.taskgroup.jcstress;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

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
 * outside the group, arriving to wait for the place, against the child holding it ending, which
 * hands the place to the first fork waiting. The hand-over is a store on one side and a load on the
 * other: the fork publishes itself as its ticket's waiter and then looks at the ticket; the holder
 * marks the ticket granted and then looks for its waiter. A wrong fence shows as a fork that never
 * returns. The holder keeps its place for a random 0 to 3 microseconds after the fork began, so the
 * hand-over lands anywhere in the fork's path to its park. Threads that only wait block (latches)
 * rather than spin: the holder is a virtual thread and needs a carrier on this 2-core machine.
 */
@JCStressTest
@Description("A fork from outside waiting for a place against the holder ending")
@Outcome(
    id = "ran",
    expect = ACCEPTABLE,
    desc = "The place went to the fork, whose child ran (SUCCESS).")
@Outcome(
    id = "hung",
    expect = FORBIDDEN,
    desc =
        "The fork was still waiting 10 s after the holder ended: the hand-over's wake-up was lost"
            + " (the fork was then interrupted to end the instance).")
@Outcome(id = "not run", expect = FORBIDDEN, desc = "The child did not run (nothing cancels it).")
@Outcome(
    id = "state .*",
    expect = FORBIDDEN,
    desc = "The task's state does not match whether its work ran (ran: SUCCESS; not: CANCELLED).")
@Outcome(
    id = "outsider interrupted",
    expect = FORBIDDEN,
    desc =
        "The outsider's interrupt status was set after its fork returned: nothing interrupts it.")
@Outcome(id = "fork threw .*", expect = FORBIDDEN, desc = "fork threw.")
@Outcome(id = "run threw .*", expect = FORBIDDEN, desc = "run did not return normally.")
@Outcome(
    id = "gave up",
    expect = FORBIDDEN,
    desc = "A bounded wait (10 s) for the holder to start gave up.")
@Outcome(expect = FORBIDDEN, desc = "Any other combination.")
@State
public class PlaceGrantVersusWait {
  private final TaskGroup group = TaskGroup.builder().maxConcurrency(1).build();
  private final long holdNanos = ThreadLocalRandom.current().nextLong(3_000L);
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
                  Race.spinFor(holdNanos); // then ends, handing its place on
                });
            fork.awaitReturn(); // the group stays open: the fork is never refused as too late
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
