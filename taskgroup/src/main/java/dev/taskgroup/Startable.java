package dev.taskgroup;

/**
 * Work started with {@link TaskGroup#start(Startable)}: it signals when it is ready, then keeps
 * running as a child of the group.
 *
 * {@snippet :
 * int port = group.start(signal -> {
 *   try (ServerSocket server = new ServerSocket(0)) {
 *     signal.started(server.getLocalPort());   // start(...) returns now
 *     serve(server);                           // keeps running in the group
 *   }
 * });
 * }
 *
 * @param <T> the type of the value passed to {@link StartSignal#started(Object)}
 */
@FunctionalInterface
public interface Startable<T> {
  /**
   * Runs the work; it must call {@code signal.started(...)} once it is ready.
   *
   * @param signal the readiness signal
   * @throws Exception whatever the work throws
   */
  void run(StartSignal<T> signal) throws Exception;
}
