package dev.taskgroup;

import dev.taskgroup.internal.Propagation;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;

/** The implementation of {@link TaskGroup#invokeAll} and {@link TaskGroup#invokeAny}. */
final class Invocations {
  private Invocations() {}

  static <T> List<T> all(Collection<? extends Callable<? extends T>> tasks)
      throws InterruptedException {
    List<Callable<? extends T>> work = copyOf(tasks);
    // COLLECT: the first failure cancels the other tasks (InvocationRace), not the group, whose
    // body runs on the caller; every failure is still kept and thrown when the group ends.
    TaskGroup group =
        inheritingPropagators(TaskGroup.builder().name("invokeAll"))
            .failurePolicy(FailurePolicy.COLLECT)
            .build();
    InvocationRace race = new InvocationRace(work.size());
    AtomicReference<Throwable> decided = new AtomicReference<>();
    AtomicReference<RejectedExecutionException> refused = new AtomicReference<>();
    try {
      group.run(
          () ->
              forkEach(
                  group,
                  work.size(),
                  index ->
                      () -> {
                        try {
                          return work.get(index).call();
                        } catch (Throwable e) {
                          if (race.end(index)) { // a failure (or a cancellation from above)
                            decided.set(e);
                          }
                          throw e;
                        }
                      },
                  race,
                  refused));
    } catch (TaskGroupException failed) {
      TaskGroupException ordered = decidingFailureFirst(failed, decided.get());
      RejectedExecutionException r = refusal(refused, ordered.failures());
      throw r != null ? r : ordered;
    }
    RejectedExecutionException r = refusal(refused, List.of());
    if (r != null) {
      throw r;
    }
    List<T> results = new ArrayList<>(work.size());
    for (Task<?> t : race.forked()) {
      if (t.state() != Future.State.SUCCESS) {
        throw stoppedUnseen("invokeAll: a task was cancelled and has no result");
      }
      @SuppressWarnings("unchecked") // each is the Task<T> forked above
      T value = (T) t.resultNow();
      results.add(value);
    }
    return results;
  }

  static <T> T any(Collection<? extends Callable<? extends T>> tasks) throws InterruptedException {
    List<Callable<? extends T>> work = copyOf(tasks);
    if (work.isEmpty()) {
      throw new IllegalArgumentException("invokeAny needs at least one task");
    }
    AtomicReference<Optional<T>> winner = new AtomicReference<>();
    List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
    TaskGroup group =
        inheritingPropagators(TaskGroup.builder().name("invokeAny"))
            .failurePolicy(FailurePolicy.COLLECT)
            .onFailure(failures::add)
            .build();
    InvocationRace race = new InvocationRace(work.size());
    AtomicReference<RejectedExecutionException> refused = new AtomicReference<>();
    group.run(
        () ->
            forkEach(
                group,
                work.size(),
                index ->
                    () -> {
                      T value = work.get(index).call();
                      if (winner.compareAndSet(null, Optional.ofNullable(value))) {
                        race.end(index); // the first result cancels the other tasks
                      }
                      return null;
                    },
                race,
                refused));
    RejectedExecutionException r = refusal(refused, distinct(failures));
    if (r != null) {
      throw r;
    }
    Optional<T> won = winner.get();
    if (won != null) {
      return won.orElse(null);
    }
    if (failures.isEmpty()) {
      throw stoppedUnseen("invokeAny: every task was cancelled");
    }
    throw new TaskGroupException("invokeAny", distinct(failures));
  }

  /**
   * The invoking group's body: forks {@code entrant.apply(i)} for each task i in order, shielded
   * ({@link #forkShielded}), and stops at a refused fork or once the race has ended ({@link
   * InvocationRace#entered}).
   */
  private static void forkEach(
      TaskGroup group,
      int count,
      IntFunction<Callable<?>> entrant,
      InvocationRace race,
      AtomicReference<RejectedExecutionException> refused)
      throws InterruptedException {
    forkShielded(
        () -> {
          for (int i = 0; i < count; i++) {
            Task<?> t = forkOrRefuse(group, entrant.apply(i), refused, race);
            if (t == null || !race.entered(i, t)) {
              return;
            }
          }
        });
  }

  /**
   * Forks {@code c} into the invoking group; if the fork is refused (a context propagator threw in
   * wrap, no thread could be started), keeps the refusal in {@code refused}, ends the race (the
   * tasks forked before are cancelled, and the group waits for them; not the group's cancel, for
   * the reason {@link InvocationRace} gives) and returns null. The call then throws the refusal
   * itself, as ExecutorService.invokeAll and invokeAny do: it is not a failure of a task.
   */
  private static <T> Task<T> forkOrRefuse(
      TaskGroup group,
      Callable<T> c,
      AtomicReference<RejectedExecutionException> refused,
      InvocationRace race) {
    try {
      return group.fork(c);
    } catch (RejectedExecutionException e) {
      refused.set(e);
      race.end(InvocationRace.REFUSED);
      return null;
    }
  }

  /**
   * The refusal to throw, if a fork was refused, with {@code failures} (the tasks' failures, which
   * came with or after it) suppressed in it, so that none is dropped; null if no fork was refused.
   */
  private static RejectedExecutionException refusal(
      AtomicReference<RejectedExecutionException> refused, List<? extends Throwable> failures) {
    RejectedExecutionException r = refused.get();
    if (r != null) {
      for (Throwable f : failures) {
        r.addSuppressed(f);
      }
    }
    return r;
  }

  /**
   * {@code failed} with the failure that ended invokeAll's race first. The task that failed first
   * cancels its siblings before its failure reaches the group (it does so from inside its work), so
   * a sibling that fails as it stops (a close() that throws) may be reported before it; the order a
   * group with {@link FailurePolicy#CANCEL_ALL} gives, the cause before its effects, is restored.
   */
  private static TaskGroupException decidingFailureFirst(
      TaskGroupException failed, Throwable deciding) {
    List<Throwable> failures = failed.failures();
    int at = -1;
    for (int i = 0; i < failures.size(); i++) {
      if (failures.get(i) == deciding) {
        at = i;
        break;
      }
    }
    if (at <= 0) {
      return failed;
    }
    List<Throwable> ordered = new ArrayList<>(failures.size());
    ordered.add(deciding);
    for (int i = 0; i < failures.size(); i++) {
      if (i != at) {
        ordered.add(failures.get(i));
      }
    }
    return new TaskGroupException("invokeAll", ordered);
  }

  /**
   * What the call throws when its group ended normally (no failure, no cancellation it could see)
   * yet a task was cancelled: only a cancellation of a scope around the caller stops the tasks
   * without failing the group, and it is hidden from the group's end when a shield was raised in
   * between since (by a task, say). The caller was cancelled, so InterruptedException, as the
   * javadoc of invokeAll and invokeAny says (not an unchecked CancellationException, which they do
   * not declare); a cancellation type, it passes that shield's exit and the cancelled scope absorbs
   * it, as Trio's Cancelled leaves a nursery whose cancelled scope a shield hides.
   */
  private static CancelledException stoppedUnseen(String what) {
    // The library's own type: no interrupt raised it (PlainScope, "In flight").
    return new dev.taskgroup.internal.CancelledException(
        what + ", stopped by a cancellation that a shield raised since hides from the caller");
  }

  /**
   * Runs the invoking group's body, which only forks, in a shielded scope. The caller's thread is
   * the group's owner: unshielded, a cancellation from above would interrupt it while it forks, and
   * an interrupt of the caller from someone else arriving meanwhile would be absorbed with that one
   * (CancelScope, "Interrupts"). Shielded, the library never interrupts the caller before the join,
   * where it never does (an owner waiting for its children is not interrupted). Nothing else
   * changes: fork does not wait (no maxConcurrency), and starts no work once the group is
   * effectively cancelled, shield or not. A cancellation from above that came while the caller
   * forked is delivered as it leaves the shield, and an interrupt landing just then may still be
   * absorbed with it; the call then ends by that cancellation anyway. The group never cancels
   * itself: what decides the call cancels the tasks instead ({@link InvocationRace}), so an
   * interrupt the caller sees otherwise is always someone else's, and is thrown as
   * InterruptedException (or left set when the call returns or throws a failure).
   */
  private static void forkShielded(Runnable forks) throws InterruptedException {
    CancelScope.shielded().run(forks::run);
  }

  /**
   * {@code failures} with a throwable thrown by more than one task (a shared exception object) kept
   * once, at its first place, as a group keeps it (TaskGroupException's javadoc).
   */
  private static List<Throwable> distinct(List<Throwable> failures) {
    Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    List<Throwable> distinct = new ArrayList<>(failures.size());
    for (Throwable f : failures) {
      if (seen.add(f)) {
        distinct.add(f);
      }
    }
    return distinct;
  }

  /**
   * The invoking group has no builder of its own: it applies the context propagators of the
   * innermost group around the caller (the service-loaded ones apply to every group anyway).
   */
  private static TaskGroup.Builder inheritingPropagators(TaskGroup.Builder builder) {
    for (ContextPropagator p : Propagation.ofEnclosingGroup()) {
      builder.contextPropagator(p);
    }
    return builder;
  }

  private static <T> List<Callable<? extends T>> copyOf(
      Collection<? extends Callable<? extends T>> tasks) {
    Objects.requireNonNull(tasks, "tasks");
    List<Callable<? extends T>> copy = new ArrayList<>(tasks.size());
    for (Callable<? extends T> c : tasks) {
      copy.add(Objects.requireNonNull(c, "tasks contains null"));
    }
    return copy;
  }
}
