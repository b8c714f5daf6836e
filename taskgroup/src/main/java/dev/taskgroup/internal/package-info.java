/**
 * The machinery behind {@link dev.taskgroup}: not exported, and public only where the public
 * package calls it.
 *
 * <h2>Reading order</h2>
 *
 * <ol>
 *   <li>{@link dev.taskgroup.internal.Scope}: the cancel-scope tree, effective cancellation, and
 *       the walk that delivers a cancellation; {@link dev.taskgroup.internal.EnteredScope}: the
 *       nodes a thread enters and leaves ({@link dev.taskgroup.internal.PlainScope} behind {@code
 *       CancelScope}, {@link dev.taskgroup.internal.Group} behind {@code TaskGroup}).
 *   <li>{@link dev.taskgroup.internal.ThreadState}: one thread's position in the tree and whose
 *       interrupt its status holds; its {@code settle()} decision table is the heart of delivery.
 *       {@link dev.taskgroup.internal.Redelivery}: the watcher that interrupts again a thread that
 *       swallowed a cancellation.
 *   <li>{@link dev.taskgroup.internal.Cancellation}: which exceptions are the cancellation, judged
 *       once, and how that judgment travels with an exception.
 *   <li>{@link dev.taskgroup.internal.Group}, {@link dev.taskgroup.internal.Forks}, {@link
 *       dev.taskgroup.internal.ChildList}, {@link dev.taskgroup.internal.TaskImpl}: a group's life,
 *       forking (and the {@code maxConcurrency} deadlock argument), its live children, one child.
 *   <li>{@link dev.taskgroup.internal.Deadlines} (one timer for every deadline, on the clock of
 *       {@code dev.taskgroup.internal.clock}; its heap and thread are {@link
 *       dev.taskgroup.internal.DeadlineHeap} and {@link dev.taskgroup.internal.DeadlineTimer}, with
 *       {@link dev.taskgroup.internal.DeadlineBackstop} for when no carrier is free), {@link
 *       dev.taskgroup.internal.CancelHook}, {@link dev.taskgroup.internal.StartSignalImpl}, {@link
 *       dev.taskgroup.internal.Propagation}, {@link dev.taskgroup.internal.Blocking}: deadlines,
 *       hooks, {@code start}, context, blocking calls.
 *   <li>{@link dev.taskgroup.internal.TreeCapture}, {@link dev.taskgroup.internal.StuckWarning},
 *       {@link dev.taskgroup.internal.Events}: what a user sees of it all (task tree, warning,
 *       JFR).
 * </ol>
 *
 * <h2>Every state word</h2>
 *
 * Each is one atomic field, changed by CAS or an atomic bit operation; the class named holds the
 * overview with the transitions in full.
 *
 * <pre>
 * field                      bits / values                         written by                read by
 * Scope.flags                CANCEL_CALLED CANCEL_INTERNAL         cancel: any thread;        walkers, the
 *                            SHIELDED ENTERED EXITED CAUGHT        ENTERED/EXITED/CAUGHT:     scope's thread,
 *                                                                  the running thread;        getters
 *                                                                  SHIELDED: any thread
 *   NEW -> ENTERED -> ENTERED|EXITED; cancel bits and CAUGHT only ever set; SHIELDED toggles.
 *   Invariant: a node is entered once; EXITED implies ENTERED.
 * Scope.runningCancelled     count of nodes CANCELLED, ENTERED     markCancelled, claim,      cancelledAbove
 *   (static)                 and not EXITED                        markExited
 *   Invariant: never below the true count (0 means nothing anywhere is cancelled).
 * ThreadState.status         BUSY DELIVERED OUTSIDE JOINING        the thread (settle, joins, deliverers,
 *                            WATCHED HOOK_FIRED COOPERATIVE        cooperative scopes, hook   the watcher
 *                            HOOK_WAIT                             waits);
 *                            IN_FLIGHT count (8-15),               deliverers and the
 *                            re-delivery count (16-31)             watcher, holding BUSY
 *   Invariant: an interrupt the library delivered (DELIVERED) never survives the cancelled
 *   region; one from outside (OUTSIDE) is never cleared by the library.
 * ChildList.state            STARTED | LOCKED | members (body +    the owner (start, leave),  fork (admit),
 *                            children + hook actions)              forks (admit and link),    the owner,
 *                                                                  members (leave; a child    walkers (lock)
 *                                                                  unlinked with it)
 *   0 -> STARTED|1 -> ... -> STARTED|0 (closed, final). LOCKED: a spin lock over the count and
 *   the list's links. Invariant: nothing is admitted once the count is 0, and the owner returns
 *   only then.
 * TaskImpl's bits of flags   outcome (RUNNING SUCCESS FAILED       the task's thread;         get(), walkers
 *   (8-13)                   CANCELLED), FINISHED, place bits,     Task.cancel (outcome only)
 *                            START_CHILD
 *   RUNNING -> one outcome, once; FINISHED set last, with or after it, with EXITED.
 *   Invariant: a task in its group's list with FINISHED set is being unlinked by its own thread.
 * CancelHook.state           OPEN -> RUNNING -> RAN, OPEN -> CLOSED  firers (CAS), close()    firers, close()
 * StartSignalImpl.state      PENDING -> STARTING -> STARTED, ENDED  the work's thread          start()'s caller
 * Deadlines.Deadline.state   NEW -> RUNNING -> STOPPED              the scope's thread, the    the timer
 *                                                                  timer (under its lock)
 * </pre>
 *
 * <p>Three of these live on every forked child, one object: {@code flags} (its root scope), {@code
 * status} (its thread) and {@code state} (its task).
 */
package dev.taskgroup.internal;
