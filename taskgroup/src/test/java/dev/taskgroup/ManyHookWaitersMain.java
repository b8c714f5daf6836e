package dev.taskgroup;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Run by {@link HookWaitTest} in a JVM of its own, with one carrier for virtual threads: {@code N}
 * virtual threads (the first argument) each run a scope cancelled before it started and register an
 * {@code onCancel} action in it, which runs at once, on a thread of its own, while the registrant
 * waits for it. Prints "all N actions ran" when every registrant has come back within 20 s, else
 * how many actions had run by then.
 */
public final class ManyHookWaitersMain {
  private ManyHookWaitersMain() {}

  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(args[0]);
    AtomicInteger ran = new AtomicInteger();
    CountDownLatch back = new CountDownLatch(n);
    for (int i = 0; i < n; i++) {
      CancelScope scope = CancelScope.create();
      scope.cancel();
      Thread.ofVirtual()
          .start(
              () -> {
                try {
                  scope.run(
                      () -> {
                        try (CancelScope.Registration r =
                            CancelScope.onCancel(ran::incrementAndGet)) {
                          // registered in a cancelled scope: the action has run when this runs
                        }
                      });
                } catch (InterruptedException e) {
                  throw new AssertionError("a cancelled scope absorbs its own cancellation", e);
                } finally {
                  back.countDown();
                }
              });
    }
    if (back.await(20, TimeUnit.SECONDS)) {
      System.out.println("all " + n + " actions ran");
    } else {
      System.out.println("after 20 s, " + ran.get() + " of " + n + " actions had run");
    }
    System.exit(0); // registrants still waiting must not keep this JVM
  }
}
