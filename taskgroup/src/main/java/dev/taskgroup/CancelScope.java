package dev.taskgroup;

import dev.taskgroup.internal.Blocking;
import dev.taskgroup.internal.CancelHook;
import dev.taskgroup.internal.CancelReason;
import dev.taskgroup.internal.Deadlines;
import dev.taskgroup.internal.EnteredScope;
import dev.taskgroup.internal.Group;
import dev.taskgroup.internal.PlainScope;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;

/**
 * A region of code, in one thread plus everything started inside it, that can be cancelled as a
 * whole: Trio's cancel scope for Java threads.
 *
 * {@snippet :
 * var scope = CancelScope.withTimeout(Duration.ofSeconds(2));
 * scope.run(() -> {
 *   while (true) {
 *     process(queue.take());   // interrupted when the deadline expires
 *   }
 * });
 * if (scope.cancelCaught()) {
 *   log.info("gave up after 2 s");
 * }
 * }
 *
 * <h2>The scope tree</h2>
 *
 * Scopes nest: a scope run inside another is below it, and the root scope of a task forked into a
 * {@link TaskGroup} is below the group's scope, so the scopes of all threads form one tree. A
 * thread is <em>effectively cancelled</em> when its innermost scope, or any scope above it up to
 * and including the nearest {@linkplain #shielded() shielded} one, is cancelled.
 *
 * <h2>Delivery</h2>
 *
 * Cancelling a scope interrupts every thread it makes effectively cancelled. Delivery is
 * level-triggered: every library checkpoint ({@link #checkpoint()}, a {@link Task#get()} that has
 * to wait, a group's wait for its children) throws {@link InterruptedException} while the thread is
 * effectively cancelled and leaves the interrupt status set, so the next interruptible JDK call
 * throws too. A thread that swallowed the interrupt is interrupted again when it enters or leaves a
 * scope or reaches a checkpoint.
 *
 * <p>Blocking that an interrupt cannot reach is out of reach of delivery. Measured on JDK 25:
 * {@code synchronized} entry, {@code Lock.lock()}, {@code CompletableFuture.join()}, {@code
 * Phaser.awaitAdvance}, socket read, accept and connect on platform threads, a read from a
 * process's output, a JDBC query an embedded database runs (or, on a platform thread, a server), a
 * {@code FileInputStream} read of a pipe, a {@code FileChannel} read of a pipe on a virtual thread
 * (on a platform thread the interrupt ends it), and busy loops. An {@link #onCancel} or {@link
 * #closeOnCancel} action ends most of them: closing the socket, {@code Statement.cancel()}, {@code
 * Process.destroy()}, and {@link #await} ends a wait for a future; a {@code synchronized} entry and
 * a pipe read through a {@code FileInputStream} have no remedy. Some calls end but leave something
 * behind: an interrupt closes an interruptible channel, and a socket on a virtual thread, for good
 * (cleanup that does I/O after a cancellation belongs in a shielded scope), so a JDBC driver that
 * talks to its server over a socket loses its connection on a virtual thread, before a {@code
 * Statement.cancel()} action can run (see {@link #onCancel} for the cooperative form); {@code
 * Process.waitFor} leaves the process running; an H2 row-lock wait ends as a lock timeout, a
 * failure unless a {@code Statement.cancel()} action ran; and an interrupt that lands in H2's file
 * store closes it and can lose committed rows: run such code in a {@link #cooperative()} scope with
 * checkpoints. The project's {@code docs/cancellation.md} has the measured table.
 *
 * <h2>Catching</h2>
 *
 * A cancellation that reaches the end of {@link #run} is absorbed by this scope if it is cancelled
 * and no cancelled scope above it is visible; then {@code run} returns normally (and {@code call}
 * returns {@code null}) and {@link #cancelCaught()} is true. Otherwise the {@link
 * InterruptedException} propagates to the outermost cancelled scope, which absorbs it. A body that
 * returns normally despite {@code cancel()} leaves {@code cancelCaught()} false. What counts as a
 * cancellation, for a thread that is effectively cancelled: {@link InterruptedException}, {@link
 * java.nio.channels.ClosedByInterruptException}, {@link java.io.InterruptedIOException} (except
 * {@link java.net.SocketTimeoutException}), {@link java.util.concurrent.CancellationException}, any
 * exception with one of those in its cause chain, and, while the interrupt status is still set by
 * the cancellation, an {@link java.io.IOException} of a kind an interrupt makes a blocking call
 * throw: a {@link java.net.SocketException} (on a virtual thread, a socket closed by the interrupt
 * throws one), a {@link java.nio.channels.ClosedChannelException} or a {@link
 * java.nio.channels.FileLockInterruptionException}, itself or in its cause chain; and a {@link
 * java.util.concurrent.BrokenBarrierException}, itself or in its cause chain (the other parties at
 * a {@code CyclicBarrier} get one when the cancellation interrupts one of them). Every other
 * exception passes through unchanged, and is a failure: any other {@code IOException} too (a
 * missing file, a full disk), even one that leaves after the cancellation came (thrown, then the
 * body cancelled its own group in a {@code finally}). An exception is judged once, at the innermost
 * scope exit it reaches, and the judgment travels with it: a {@code SocketException} that leaves a
 * shielded scope (where nothing is cancelled) is a failure at every exit further out too, even
 * though the cancellation outside is delivered again as it leaves the shield. So cleanup whose
 * network failures matter runs in a {@linkplain #shielded() shielded} scope. The cancellation types
 * themselves are judged again at each exit: an {@code InterruptedException} or a {@code
 * CancellationException} that leaves a shield (the {@code get()} of a task the group's cancellation
 * cancelled, read in shielded cleanup and let through) is taken for the cancellation at the next
 * exit in a cancelled region. Wrap it inside the shield if it must count as a failure. A {@link
 * TaskGroupException}, and the {@link java.util.concurrent.ExecutionException} of {@link
 * Task#get()}, are always failures, whatever their causes.
 *
 * <p>A failure raised while the cancellation leaves (a {@code close()} that throws in a
 * try-with-resources being cancelled) is a failure too: {@code run} throws it in place of the
 * cancellation, with any others suppressed in it. Should every one of them refuse suppressed
 * exceptions, the others go straight to the group the thread works for, or, on a thread outside
 * every group, to its uncaught-exception handler: none is lost.
 *
 * <h2>Interrupts</h2>
 *
 * An interrupt the library delivered for a scope never survives that scope's exit, with one
 * exception: a body that sees the cancellation by itself ({@link #isCancelled()}) and throws an
 * {@code InterruptedException} of its own making may leave before that interrupt, already on its
 * way, has landed, and it then lands after the exit (such an exception cannot be told from one a
 * blocking call raised for the interrupt, which proves that it landed). Call {@link #checkpoint()}
 * instead: it throws the library's own exception, and the exit waits for the interrupt. An
 * interrupt from someone else that was pending when a cancellation was delivered is never lost: it
 * is set again, or thrown, after the scope exits. One that arrives while the library's own
 * interrupt is pending cannot be told apart from it and may be absorbed with it; so may one that
 * arrives after the body caught the library's interrupt and went on (it looks like that interrupt
 * set again by the body, {@code Thread.currentThread().interrupt()} in a {@code catch}); so may one
 * whose {@code InterruptedException} is still on its way out of the body when the cancellation
 * comes (it leaves with the library's interrupt pending behind it, as after that idiom); and one
 * that ends a blocking call in a shielded scope while a scope outside the shield is cancelled (its
 * {@code InterruptedException} leaves the shield looking like that cancellation).
 *
 * <h2>Deadlines</h2>
 *
 * A deadline fires on time: the library's timer, a virtual thread, marks the scope cancelled and
 * delivers the cancellation. While CPU-bound virtual threads hold every carrier that timer cannot
 * run; a platform thread of the library then fires the deadline within about 30 ms of its time (it
 * steps in once the timer is 10 ms late, and looks at least every 20 ms), and the busy threads see
 * it at their next {@link #checkpoint()}.
 *
 * <h2>Memory consistency, nulls, threads</h2>
 *
 * {@code cancel()} happens-before the {@link InterruptedException} it causes. Every method may be
 * called from any thread, except that {@code run} runs the body on the calling thread. Null
 * arguments throw {@link NullPointerException} naming the parameter. A scope runs once; a second
 * {@code run} throws {@link IllegalStateException}.
 */
public final class CancelScope {
  /**
   * Code run inside a scope. It throws what it throws ({@code X}), plus {@link
   * InterruptedException} when cancelled.
   *
   * @param <X> the exception type the code may throw
   */
  @FunctionalInterface
  public interface Block<X extends Exception> {
    /**
     * Runs the code.
     *
     * @throws X what the code throws
     * @throws InterruptedException when cancelled or interrupted
     */
    void run() throws X, InterruptedException;
  }

  /**
   * Code run inside a scope that computes a result.
   *
   * @param <T> the result type
   * @param <X> the exception type the code may throw
   */
  @FunctionalInterface
  public interface Computation<T, X extends Exception> {
    /**
     * Computes the result.
     *
     * @return the result
     * @throws X what the code throws
     * @throws InterruptedException when cancelled or interrupted
     */
    T call() throws X, InterruptedException;
  }

  /** A registered cancel hook; closing it removes the hook. See {@link #onCancel(Body)}. */
  public interface Registration extends AutoCloseable {
    /**
     * Removes the hook: after {@code close} returns, the action will not start. If the scope was
     * cancelled while the registration was open and the action has not started yet (the thread saw
     * the cancellation before the action was fired), it starts now. If the action has started,
     * {@code close} waits for it to end, without being interruptible (so the resource it closes is
     * not used after {@code close} returns); an action must therefore not wait for the thread that
     * closes its registration. Called from the action itself, {@code close} returns at once. If the
     * action ran and threw, with no group around, {@code close} throws what it threw. A
     * registration never closed is closed by the exit of the scope it was registered for: with no
     * group around, that scope's {@code run} or {@code call} waits for a started action and throws
     * what it threw (suppressed on the body's own failure, if the body failed).
     */
    @Override
    void close();
  }

  private final EnteredScope scope;

  /** The group whose scope this is, or null for a scope of its own. */
  private final Group group;

  private CancelScope(EnteredScope scope, Group group) {
    this.scope = scope;
    this.group = group;
  }

  /** The view of a group's own scope returned by {@link TaskGroup#cancelScope()}. */
  static CancelScope viewOf(Group group) {
    return new CancelScope(group, group);
  }

  /**
   * A new scope with no deadline, not shielded.
   *
   * @return a new scope, not yet running
   */
  public static CancelScope create() {
    return new CancelScope(new PlainScope(false), null);
  }

  /**
   * A new scope whose deadline is {@code timeout} after its {@code run} starts.
   *
   * @param timeout the timeout; zero cancels at once
   * @return a new scope, not yet running
   * @throws NullPointerException if {@code timeout} is null
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  public static CancelScope withTimeout(Duration timeout) {
    checkTimeout(timeout);
    PlainScope fresh = new PlainScope(false);
    Deadlines.initTimeout(fresh, timeout);
    return new CancelScope(fresh, null);
  }

  /**
   * A new scope with a deadline; one in the past has expired already: the scope is cancelled at
   * once ({@link #cancelCalled()} is true) and starts cancelled when run starts.
   *
   * @param deadline when to cancel, converted once to the monotonic clock
   * @return a new scope, not yet running
   * @throws NullPointerException if {@code deadline} is null
   */
  public static CancelScope withDeadline(Instant deadline) {
    CancelScope s = create();
    s.setDeadline(deadline);
    return s;
  }

  /**
   * A new shielded scope: cancellation of scopes above it does not reach it or anything below it;
   * its own {@code cancel()} and deadline still work. Use it for cleanup that must block after a
   * cancellation.
   *
   * {@snippet :
   * try {
   *   session.serve();
   * } finally {
   *   CancelScope.shielded().run(() -> connection.sendGoodbye()); // runs even if cancelled
   * }
   * }
   *
   * @return a new shielded scope, not yet running
   */
  public static CancelScope shielded() {
    return new CancelScope(new PlainScope(true), null);
  }

  /**
   * A new cooperative scope: inside it the library never interrupts the calling thread. For code
   * that an interrupt damages: H2's file store closes its {@code FileChannel} on an interrupt, and
   * a cancelled H2 writer has been seen to lose committed rows.
   *
   * <p>Inside it, an interrupt the library delivered before entry is dropped (as at a shield) and
   * none is re-delivered; the cancellation is still seen by {@link #checkpoint()} (which throws
   * without setting the interrupt status), {@link #isCancelled()}, {@link #await}, and every
   * library wait ({@link Task#get()} with or without a timeout, {@code fork} waiting for a place,
   * {@code start}, a group's wait for its children), and {@link #onCancel} actions still run. It
   * covers the calling thread only: threads forked inside it are interrupted as usual. On leaving
   * it into a region that is still cancelled, delivery resumes at once.
   *
   * {@snippet :
   * CancelScope.cooperative().run(() -> {
   *   for (int i = 0; i < rows.size(); i++) {
   *     insert.setString(1, rows.get(i));
   *     insert.executeUpdate();
   *     if (i % 1_000 == 0) {
   *       CancelScope.checkpoint();   // stops here, between two committed rows
   *     }
   *   }
   * });
   * }
   *
   * @return a new cooperative scope, not yet running
   */
  public static CancelScope cooperative() {
    return new CancelScope(new PlainScope(false, true), null);
  }

  /**
   * Runs {@code body} inside this scope on the calling thread.
   *
   * @param body the code
   * @param <X> the exception type the body throws
   * @throws X what the body throws, unchanged
   * @throws InterruptedException if a cancellation this scope does not absorb reaches its end, or
   *     the thread is interrupted by someone else
   * @throws IllegalStateException if the scope has already run, or it is a group's scope
   * @throws NullPointerException if {@code body} is null
   */
  public <X extends Exception> void run(Block<X> body) throws X, InterruptedException {
    Objects.requireNonNull(body, "body");
    plain()
        .call(
            () -> {
              body.run();
              return null;
            });
  }

  /**
   * Runs {@code body} inside this scope on the calling thread and returns its result.
   *
   * @param body the code
   * @param <T> the result type
   * @param <X> the exception type the body throws
   * @return the body's result, or {@code null} if this scope absorbed a cancellation
   * @throws X what the body throws, unchanged
   * @throws InterruptedException as for {@link #run(Block)}
   * @throws IllegalStateException if the scope has already run, or it is a group's scope
   * @throws NullPointerException if {@code body} is null
   */
  public <T, X extends Exception> T call(Computation<T, X> body) throws X, InterruptedException {
    Objects.requireNonNull(body, "body");
    return plain().call(body);
  }

  private PlainScope plain() {
    if (group != null) {
      throw new IllegalStateException(
          "this is the scope of " + group.describe() + ": it runs with the group's run()");
    }
    return (PlainScope) scope;
  }

  /**
   * Cancels this scope: every thread it makes effectively cancelled is interrupted, and its
   * checkpoints throw. Returns at once (unless the JDK's own {@link Thread#interrupt()} blocks, as
   * for {@link TaskGroup#cancel()}). Cancelling again has no further effect; after the scope exited
   * it only sets {@link #cancelCalled()}; before it runs, the scope starts cancelled. (One
   * exception: a call that threw an {@link Error} part way, a {@link StackOverflowError} when
   * called with nearly no stack left, may not have interrupted every thread yet; the next call
   * does.)
   */
  public void cancel() {
    scope.cancel(CancelReason.explicit("cancel() called"));
  }

  /**
   * Cancels this scope, recording {@code reason}; the first reason given is kept.
   *
   * @param reason why
   * @throws NullPointerException if {@code reason} is null
   */
  public void cancel(String reason) {
    Objects.requireNonNull(reason, "reason");
    scope.cancel(CancelReason.explicit(reason));
  }

  /**
   * Whether {@code cancel()} was called (at any time) or the deadline expired.
   *
   * @return whether this scope was cancelled
   */
  public boolean cancelCalled() {
    return scope.cancelCalled();
  }

  /**
   * Whether this scope absorbed a cancellation (see the class description).
   *
   * @return whether the scope caught a cancellation
   */
  public boolean cancelCaught() {
    return scope.cancelCaught();
  }

  /**
   * The deadline: as set, or for a relative timeout when it expires (empty before {@code run}
   * starts); empty when there is none. A timeout too long for an {@code Instant} (such as {@code
   * ChronoUnit.FOREVER.getDuration()}) shows {@link Instant#MAX}.
   *
   * @return the deadline, if any
   */
  public Optional<Instant> deadline() {
    return Deadlines.deadline(scope);
  }

  /**
   * Sets the deadline; while running it takes effect at once, earlier or later. One in the past
   * cancels at once, also before {@code run} (the scope then starts cancelled, and a later deadline
   * set before it runs does not undo that); after the scope exited it cancels nothing. A deadline
   * that has expired has cancelled the scope for good, whatever is set later. A change made from
   * another thread just as the old deadline passes either comes first (nothing fires before the new
   * deadline) or returns with the scope already cancelled, never cancelled afterwards by the old
   * one.
   *
   * @param deadline the new deadline
   * @throws NullPointerException if {@code deadline} is null
   */
  public void setDeadline(Instant deadline) {
    Objects.requireNonNull(deadline, "deadline");
    Deadlines.setDeadline(scope, deadline);
  }

  /**
   * Sets the deadline to {@code timeout} from now, or, before {@code run}, from when it starts.
   *
   * @param timeout the timeout; zero cancels at once
   * @throws NullPointerException if {@code timeout} is null
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  public void setTimeout(Duration timeout) {
    checkTimeout(timeout);
    Deadlines.setTimeout(scope, timeout);
  }

  private static void checkTimeout(Duration timeout) {
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative()) {
      throw new IllegalArgumentException("timeout must not be negative, was " + timeout);
    }
  }

  /**
   * Whether this scope is shielded.
   *
   * @return whether cancellation from above is kept out
   */
  public boolean isShielded() {
    return scope.isShielded();
  }

  /**
   * Turns the shield on or off, also while the scope runs. On, from the thread running the scope,
   * it drops an interrupt the library delivered for a cancellation above. An interrupt already
   * delivered to another thread below may still fire once there; until that thread's next
   * checkpoint or scope entry or exit, an exception of an interrupt type it lets out (such as
   * {@link InterruptedException}, {@link java.io.InterruptedIOException}, or one caused by either)
   * is taken for that cancellation, and a task that leaves with it ends {@code CANCELLED}, not
   * failed: the library cannot tell the exception that interrupt raised from one a later interrupt
   * raises. Off, while a scope above is cancelled, it delivers that cancellation at once.
   *
   * @param shield whether to shield
   */
  public void setShielded(boolean shield) {
    scope.setShielded(shield);
  }

  /**
   * Why this scope was cancelled: the reason given to {@code cancel(reason)}, or a description of
   * what cancelled it (a plain {@code cancel()}, the deadline, a failure in the group, the owner
   * being interrupted); empty while it is not cancelled.
   *
   * @return the first reason, if cancelled
   */
  public Optional<String> cancelReason() {
    CancelReason why = scope.reason();
    return why == null ? Optional.empty() : Optional.of(why.text());
  }

  /**
   * Registers {@code action} to run once, on another thread, soon after the calling thread's
   * innermost scope becomes effectively cancelled while the registration is open (at once, before
   * this method returns, if it already is). It is for what an interrupt cannot stop: {@code
   * Statement.cancel()}, closing a socket, destroying a process. Scopes entered later do not
   * trigger it. The action may throw checked exceptions; what it throws is a failure of the
   * innermost enclosing group (for the work of a {@link TaskGroup#start start} that has not
   * signalled yet, the group it was started in), which waits for the action, or, with no group
   * around, is thrown by {@link Registration#close()} (or, for a registration left open, by the
   * exit of its scope).
   *
   * <p>Once the action has started, any {@link Exception} (not an {@link Error}) the calling thread
   * throws while it stays cancelled counts as the cancellation, since it is the action's effect:
   * the cancelled statement's {@code SQLException} below ends the scope or task as cancelled (the
   * group's {@code run} returns normally and {@code cancelCaught()} is true), not as a failure. An
   * exception carries no time, so one thrown just before the action started that leaves after it
   * counts too. The try-with-resources below closes the registration as the exception leaves its
   * block: unless the cancellation came before that, the action never starts, and the exception is
   * a failure. The action runs inside the {@link ContextPropagator}s that are service-loaded and
   * those of the innermost group around the calling thread, which wrap it here, on the calling
   * thread. Its thread inherits no inheritable thread locals (it is started by whichever thread
   * delivers the cancellation, whose values are not the registrant's): carry context into it with a
   * propagator. It runs with the registrant's context class loader, whoever cancels.
   *
   * {@snippet :
   * try (var hook = CancelScope.onCancel(statement::cancel)) {
   *   return statement.executeQuery(sql);
   * }
   * }
   *
   * <p>A driver that talks to its server over a socket, on a virtual thread, loses that socket to
   * the interrupt before the action runs (the connection is closed, and {@code statement.cancel()}
   * throws): run the call in a {@link #cooperative()} scope, where the library does not interrupt
   * the thread and the action alone ends it, as a cancellation, with the connection kept.
   *
   * {@snippet :
   * return CancelScope.cooperative().call(() -> {
   *   try (var hook = CancelScope.onCancel(statement::cancel)) {
   *     return statement.executeQuery(sql);
   *   }
   * });
   * }
   *
   * @param action the action
   * @return the registration; close it to remove the action
   * @throws NullPointerException if {@code action} is null
   * @throws java.util.concurrent.RejectedExecutionException if a context propagator threw in {@code
   *     wrap} (nothing is registered)
   */
  public static Registration onCancel(Body action) {
    Objects.requireNonNull(action, "action");
    return CancelHook.register(action);
  }

  /**
   * Registers {@code resource.close()} as an {@link #onCancel(Body)} action: the way to end a
   * blocking read on a socket, a pipe or a stream that an interrupt does not reach. An exception
   * thrown by {@code close()} is handled as the action's, as it is, never wrapped.
   *
   * {@snippet :
   * try (var hook = CancelScope.closeOnCancel(socket)) {
   *   return socket.getInputStream().read(buffer);   // ends when cancelled, on any thread
   * }
   * }
   *
   * @param resource what to close on cancellation
   * @return the registration; close it to remove the action (the resource stays open)
   * @throws NullPointerException if {@code resource} is null
   */
  public static Registration closeOnCancel(AutoCloseable resource) {
    Objects.requireNonNull(resource, "resource");
    return CancelHook.register(resource::close);
  }

  /**
   * Waits for {@code stage} like {@link java.util.concurrent.Future#get()}, as a checkpoint: when
   * the calling thread is, or becomes, effectively cancelled before the stage completes, the stage
   * is cancelled with {@code stage.toCompletableFuture().cancel(true)} (which aborts, for example,
   * a JDK {@code HttpClient.sendAsync} request) and {@link InterruptedException} is thrown. A stage
   * already complete may be returned. An interrupt from someone else throws {@link
   * InterruptedException} and leaves the stage alone. A stage that does not support {@code
   * toCompletableFuture()} (it throws {@link UnsupportedOperationException}) is waited for through
   * {@code whenComplete}; a cancellation then ends the wait alone, as nothing can cancel that
   * stage.
   *
   * {@snippet :
   * HttpResponse<String> response =
   *     CancelScope.await(client.sendAsync(request, HttpResponse.BodyHandlers.ofString()));
   * }
   *
   * @param stage what to wait for
   * @param <T> the result type
   * @return the stage's result
   * @throws InterruptedException if cancelled or interrupted while waiting
   * @throws ExecutionException if the stage completed exceptionally (its exception is the cause)
   * @throws java.util.concurrent.CancellationException if someone else cancelled the stage
   * @throws NullPointerException if {@code stage} is null
   */
  public static <T> T await(CompletionStage<T> stage)
      throws InterruptedException, ExecutionException {
    Objects.requireNonNull(stage, "stage");
    return Blocking.await(stage);
  }

  /**
   * A checkpoint: throws {@link InterruptedException} if the calling thread is effectively
   * cancelled (the interrupt status stays set) or if its interrupt status was set by someone else
   * (it is cleared, as JDK blocking methods do). For a cancellation the exception is a {@link
   * CancelledException} naming the cancelled scope and the reason; for an interrupt from someone
   * else it is a plain {@code InterruptedException}.
   *
   * @throws InterruptedException if cancelled (a {@link CancelledException}) or interrupted
   */
  public static void checkpoint() throws InterruptedException {
    PlainScope.checkpoint();
  }

  /**
   * Sleeps for {@code duration} on the library's clock: the clock every deadline runs on, which is
   * the system's monotonic clock unless a test installs a virtual one (the test kit {@code
   * dev.taskgroup:taskgroup-test}); then this sleep ends when the virtual time reaches its end, and
   * a 5-minute sleep in a test takes no real time.
   *
   * <p>The sleep is a {@linkplain #checkpoint() checkpoint}, at its start and all the while it
   * waits: if the calling thread is, or becomes, effectively cancelled, it throws {@link
   * InterruptedException} and leaves the interrupt status set (like every checkpoint); if the
   * thread is interrupted by someone else, it throws and clears the status (like {@link
   * Thread#sleep(Duration)}). A zero duration is just a checkpoint.
   *
   * {@snippet :
   * while (true) {
   *   poll(inbox);
   *   CancelScope.sleep(Duration.ofSeconds(5));   // ends early, throwing, when cancelled
   * }
   * }
   *
   * @param duration how long to sleep
   * @throws InterruptedException if the thread is effectively cancelled or interrupted
   * @throws NullPointerException if {@code duration} is null
   * @throws IllegalArgumentException if {@code duration} is negative
   */
  public static void sleep(Duration duration) throws InterruptedException {
    Objects.requireNonNull(duration, "duration");
    if (duration.isNegative()) {
      throw new IllegalArgumentException(
          "duration must not be negative, was "
              + duration
              + ": use Duration.ZERO for a checkpoint");
    }
    long nanos;
    try {
      nanos = Math.min(duration.toNanos(), Long.MAX_VALUE / 4);
    } catch (ArithmeticException tooLong) {
      nanos = Long.MAX_VALUE / 4; // longer than any JVM lives
    }
    PlainScope.sleep(nanos);
  }

  /**
   * Whether the calling thread is effectively cancelled.
   *
   * @return whether a checkpoint would throw because of a cancellation
   */
  public static boolean isCancelled() {
    return PlainScope.isCancelled();
  }

  /**
   * Runs {@code body} with a timeout; if the deadline fires, the body is cancelled, and when the
   * cancellation ends it this returns {@code null}. A body that returns normally despite the
   * cancellation (it ignored it, or a cancelled call returned what it had, like a read of a
   * process's output that returns the partial output after {@code onCancel(process::destroy)})
   * returns its value, as for any body that returns normally despite {@code cancel()}. When {@code
   * null} is also a valid result, or a late result must be told from a timely one, use {@link
   * #withTimeout} and {@link #cancelCaught()} or {@link #cancelCalled()}.
   *
   * {@snippet :
   * String reply = CancelScope.moveOnAfter(Duration.ofMillis(200), () -> server.ask(question));
   * if (reply == null) reply = cachedReply;
   * }
   *
   * @param timeout the timeout
   * @param body the code
   * @param <T> the result type
   * @param <X> the exception type the body throws
   * @return the body's result, or {@code null} if the cancellation ended the body
   * @throws X what the body throws, unchanged
   * @throws InterruptedException if cancelled from above or interrupted
   * @throws NullPointerException if an argument is null
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  public static <T, X extends Exception> T moveOnAfter(Duration timeout, Computation<T, X> body)
      throws X, InterruptedException {
    Objects.requireNonNull(body, "body");
    return withTimeout(timeout).call(body);
  }

  /**
   * Runs {@code body} with a timeout; if the deadline fires and the cancellation ends the body (the
   * scope's {@link #cancelCaught()}), throws {@link TimeoutException}, whose cause is what the
   * cancellation ended the body with (the {@link InterruptedException} of the blocking call it was
   * in, say), as Python's {@code asyncio.timeout} chains the cancellation. A body that returns
   * normally despite the cancellation (it ignored it, or a cancelled call returned what it had,
   * like a read of a process's output that returns the partial output after {@code
   * onCancel(process::destroy)}) has its result returned and nothing thrown, as Trio's {@code
   * fail_after} keys on {@code cancelled_caught}.
   *
   * {@snippet :
   * try {
   *   return CancelScope.failAfter(Duration.ofSeconds(2), () -> fetch(url));
   * } catch (TimeoutException e) {
   *   log.warn("fetch took too long", e); // e.getCause(): how fetch was stopped
   *   return cached(url);
   * }
   * }
   *
   * @param timeout the timeout
   * @param body the code
   * @param <T> the result type
   * @param <X> the exception type the body throws
   * @return the body's result
   * @throws TimeoutException if the deadline's cancellation ended the body
   * @throws X what the body throws, unchanged
   * @throws InterruptedException if cancelled from above or interrupted
   * @throws NullPointerException if an argument is null
   * @throws IllegalArgumentException if {@code timeout} is negative
   */
  public static <T, X extends Exception> T failAfter(Duration timeout, Computation<T, X> body)
      throws X, InterruptedException, TimeoutException {
    Objects.requireNonNull(body, "body");
    CancelScope scope = withTimeout(timeout);
    Throwable[] endedWith = new Throwable[1]; // what the body threw, if the scope absorbs it
    T result =
        scope.call(
            () -> {
              try {
                return body.call();
              } catch (Throwable t) {
                endedWith[0] = t;
                throw t;
              }
            });
    if (scope.cancelCaught()) {
      TimeoutException timedOut = new TimeoutException("timed out after " + timeout);
      if (endedWith[0] != null) {
        timedOut.initCause(endedWith[0]);
      }
      throw timedOut;
    }
    return result;
  }

  /**
   * The scope's state, and for a group's scope the group's name, e.g. {@code
   * CancelScope[cancelled]} or {@code CancelScope[group 'orders', running]}: one of the states of
   * {@link TaskTree} ({@code running}, {@code cancelled}, {@code joining}, {@code done}), or {@code
   * new} before it runs.
   *
   * @return the description and state
   */
  @Override
  public String toString() {
    return group == null
        ? "CancelScope[" + scope.treeState() + "]"
        : "CancelScope[" + group.describe() + ", " + group.treeState() + "]";
  }
}
