package dev.taskgroup;

/**
 * What a {@link TaskGroup} does when one of its children fails.
 *
 * <p>Whatever the policy, a failure of the group's body cancels every child, and no failure is ever
 * lost: each one is either reported by {@link TaskGroup#run} in a {@link TaskGroupException} or
 * handed to the {@linkplain TaskGroup.Builder#onFailure failure handler}.
 */
public enum FailurePolicy {
  /**
   * The default: the first failure cancels the body and every other child; after all of them have
   * finished, {@link TaskGroup#run} throws a {@link TaskGroupException} holding every failure.
   */
  CANCEL_ALL,

  /**
   * Supervisor style: a failing child cancels nobody. Failures are kept and reported when the group
   * ends, or, with a {@linkplain TaskGroup.Builder#onFailure handler}, handed to it as they happen
   * and not kept, so a long-running group does not grow in memory.
   */
  COLLECT
}
