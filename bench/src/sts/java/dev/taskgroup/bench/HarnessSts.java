package dev.taskgroup.bench;

import java.util.concurrent.StructuredTaskScope;

/**
 * The {@code StructuredTaskScope} set-up of the harnesses (bench profile only; {@link Harness#of}
 * loads it by name): an owner virtual thread opens a scope, forks N parked children and waits in
 * {@code join()}; the cancel interrupts the owner, whose {@code close()} interrupts every child and
 * waits for them.
 */
final class HarnessSts extends Harness {
  HarnessSts(int n) {
    super(n);
  }

  @Override
  void start() {
    int n = parked.size();
    owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try (var scope = StructuredTaskScope.open()) {
                    startNanos = System.nanoTime();
                    for (int i = 0; i < n; i++) {
                      scope.fork(parked.child());
                    }
                    scope.join();
                    failure = new IllegalStateException("join() returned without the cancel");
                  } catch (InterruptedException e) {
                    doneNanos = System.nanoTime(); // after close(): every child has ended
                  } catch (Throwable t) {
                    failure = t;
                  }
                });
  }

  @Override
  long cancel() throws InterruptedException {
    long t0 = System.nanoTime();
    owner.interrupt();
    owner.join();
    check();
    return doneNanos - t0;
  }
}
