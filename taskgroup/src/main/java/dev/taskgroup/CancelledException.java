package dev.taskgroup;

import java.io.Serial;

/**
 * The {@link InterruptedException} that taskgroup itself throws for a cancellation: from {@link
 * CancelScope#checkpoint()}, from a library wait ({@link Task#get()}, {@code fork} waiting for a
 * place, {@link TaskGroup#start}), and when a cancellation that arrived as another exception (a
 * {@link java.nio.channels.ClosedByInterruptException}, a socket closed by the interrupt) leaves a
 * scope that does not absorb it; that exception is then its {@linkplain #getCause() cause}. Its
 * message names the cancelled scope or group and why it was cancelled.
 *
 * <p><b>Catch {@code InterruptedException}, not this type, to stop.</b> A cancellation also reaches
 * code as the plain {@code InterruptedException} of an interrupted JDK call ({@code Thread.sleep},
 * {@code BlockingQueue.take}, ...), which is not a {@code CancelledException}. Code that must stop
 * when cancelled catches (or, better, lets through) {@code InterruptedException}; this type only
 * tells, where it appears, that the library raised the exception for a cancellation rather than for
 * an interrupt from someone else. To ask whether the current thread is being cancelled, use {@link
 * CancelScope#isCancelled()}.
 *
 * {@snippet :
 * try {
 *   CancelScope.checkpoint();
 * } catch (CancelledException e) {
 *   log.debug("stopping: {}", e.getMessage());   // "group 'search' cancelled by ...: found it"
 *   throw e;                                     // let the scope that was cancelled absorb it
 * }
 * }
 *
 * <p>The exceptions the library throws are of a subclass of this type that is not part of the API.
 * Code may create instances (for example, in tests of code that handles a cancellation).
 */
public class CancelledException extends InterruptedException {
  @Serial private static final long serialVersionUID = 1L;

  /**
   * Creates an exception with a message.
   *
   * @param message what was cancelled and why
   */
  public CancelledException(String message) {
    super(message);
  }

  /**
   * Creates an exception with a message and the exception in which the cancellation arrived.
   *
   * @param message what was cancelled and why
   * @param cause the exception that carried the cancellation, or {@code null}
   */
  @SuppressWarnings("this-escape") // initCause is Throwable's; this class does not override it
  public CancelledException(String message, Throwable cause) {
    super(message);
    if (cause != null) {
      initCause(cause);
    }
  }
}
