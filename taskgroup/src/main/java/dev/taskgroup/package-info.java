/**
 * Structured concurrency for Java 21+ with first-class cancellation.
 *
 * <ul>
 *   <li>{@link dev.taskgroup.TaskGroup}: a block and the tasks it forks, run and cancelled as one;
 *       {@link dev.taskgroup.TaskGroup#cancel()} stops every task and the group returns normally.
 *       Its {@link dev.taskgroup.Task}s are {@code Future}s; {@link
 *       dev.taskgroup.TaskGroupException} holds every failure.
 *   <li>{@link dev.taskgroup.CancelScope}: a region of code that can be cancelled, with deadlines,
 *       shields, checkpoints, cancel hooks for calls an interrupt cannot stop, and cooperative
 *       regions for code an interrupt damages.
 *   <li>{@link dev.taskgroup.ContextPropagator}: carries MDC, trace or {@code ScopedValue} context
 *       from the forking thread into each child.
 *   <li>{@link dev.taskgroup.TaskTree}: every live group, scope and task of the process, for a
 *       person to read or a tool to parse.
 * </ul>
 *
 * <p>A cancellation reaches a thread as an interrupt, again and again until the thread leaves the
 * cancelled region, and every library wait is a checkpoint that throws {@link
 * dev.taskgroup.CancelledException} (an {@code InterruptedException}). {@code docs/guide.md} in the
 * project teaches the model step by step; the javadoc of each type is its contract.
 */
package dev.taskgroup;
