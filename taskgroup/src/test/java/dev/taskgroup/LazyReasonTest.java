package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The reason a failure gives the rest of its group, and the message of a {@link CancelledException}
 * it causes, describe the failure when first read (its {@code toString()} is user code that may be
 * slow or block, and must not hold up the cancellation). Read so, the text must still be one text,
 * made once: from inside the failure's own {@code toString()} (a failure that names its group's
 * state), from many threads at once, and after the exception was serialized.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class LazyReasonTest {
  /** A failure whose description is what {@code describe} says, counting its calls. */
  static final class Described extends RuntimeException {
    final AtomicInteger calls = new AtomicInteger();
    final transient Supplier<String> describe;

    Described(Supplier<String> describe) {
      super("described");
      this.describe = describe;
    }

    @Override
    public String toString() {
      calls.incrementAndGet();
      return describe.get();
    }
  }

  /** Runs group {@code g} whose one child fails with {@code failure}; returns what run threw. */
  private static Throwable failWith(TaskGroup g, RuntimeException failure) {
    return catchThrowable(
        () ->
            g.run(
                () -> {
                  g.fork(
                      "bad",
                      () -> {
                        throw failure;
                      });
                }));
  }

  /**
   * A failure whose {@code toString()} reads its own group's cancel reason, which describes that
   * failure: the read from inside names the failure's class. (It recursed, describing the failure
   * about 2 000 times, into 70-110 KB of nested text, until the stack overflowed.)
   */
  @RepeatedTest(3)
  void aFailureWhoseToStringReadsItsGroupsReasonIsDescribedWithoutRecursion() {
    TaskGroup g = TaskGroup.named("reads-its-reason");
    Described failure =
        new Described(() -> "F(reason=" + g.cancelScope().cancelReason().orElse("none") + ")");
    assertThat(failWith(g, failure)).isInstanceOf(TaskGroupException.class);

    String reason = g.cancelScope().cancelReason().orElseThrow();
    assertThat(reason)
        .isEqualTo(
            "task 'bad' of group 'reads-its-reason' failed: F(reason=task 'bad' of group"
                + " 'reads-its-reason' failed: "
                + Described.class.getName()
                + ")");
    assertThat(failure.calls.get()).as("toString() calls").isLessThan(5);
  }

  /**
   * A failure whose {@code toString()} reads a sibling's {@code CancelledException} message, which
   * describes the group's reason, which describes that failure: the stand-in text the message gets
   * while the reason is being made is not kept, and the message reads as the reason once made.
   */
  @RepeatedTest(3)
  void aMessageReadWhileItsReasonIsBeingMadeIsNotKeptWithTheStandIn() throws Exception {
    for (boolean serialized : new boolean[] {false, true}) {
      TaskGroup g = TaskGroup.named("reads-a-sibling");
      AtomicReference<CancelledException> sibling = new AtomicReference<>();
      Described failure =
          new Described(
              () -> {
                CancelledException e = sibling.get();
                if (e == null) {
                  return "F(-)";
                }
                try { // the message read, or the exception serialized, from inside
                  return "F(sibling=" + (serialized ? roundTrip(e) : e).getMessage() + ")";
                } catch (Exception x) {
                  throw new AssertionError(x);
                }
              });
      failWithASibling(g, failure, sibling);
      String reason = g.cancelScope().cancelReason().orElseThrow(); // made now: reads the message
      assertThat(reason).contains("F(sibling=");
      assertThat(sibling.get().getMessage())
          .as("the message, read again after the reason was made (serialized: %s)", serialized)
          .contains(reason);
      assertThat(roundTrip(sibling.get()).getMessage()).contains(reason);
    }
  }

  /**
   * A {@code toString()} that answers differently each time, read for the first time by eight
   * threads at once: every one of them reads the same reason.
   */
  @RepeatedTest(5)
  void manyFirstReadersOfAReasonAllReadOneText() throws Exception {
    AtomicInteger n = new AtomicInteger();
    TaskGroup g = TaskGroup.named("many-readers");
    Described failure = new Described(() -> "F#" + n.incrementAndGet());
    failWith(g, failure);
    CountDownLatch go = new CountDownLatch(1);
    List<String> read = java.util.Collections.synchronizedList(new ArrayList<>());
    List<Thread> readers = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      readers.add(
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      go.await();
                    } catch (InterruptedException e) {
                      throw new AssertionError(e);
                    }
                    read.add(g.cancelScope().cancelReason().orElseThrow());
                  }));
    }
    go.countDown();
    for (Thread r : readers) {
      r.join();
    }
    assertThat(read).hasSize(8);
    assertThat(new java.util.HashSet<>(read)).as("distinct texts").hasSize(1);
  }

  /**
   * The library's {@code CancelledException} keeps its whole message, reason included, through
   * serialization (the reason itself is not serialized): for an explicit reason and for a
   * failure's, read before serializing or not.
   */
  @Test
  void aSerializedCancelledExceptionKeepsWhyItWasCancelled() throws Exception {
    CancelScope scope = CancelScope.create();
    AtomicReference<CancelledException> explicit = new AtomicReference<>();
    scope.run(
        () -> {
          scope.cancel("user reason R");
          try {
            CancelScope.checkpoint();
          } catch (CancelledException e) {
            explicit.set(e);
            throw e;
          }
        });
    assertThat(roundTrip(explicit.get()).getMessage())
        .isEqualTo(explicit.get().getMessage())
        .contains("user reason R");

    TaskGroup g = TaskGroup.named("serialized");
    AtomicReference<CancelledException> byFailure = new AtomicReference<>();
    failWithASibling(g, new IllegalStateException("the failure"), byFailure);
    CancelledException notReadYet = byFailure.get();
    String message = roundTrip(notReadYet).getMessage(); // serialized before any read
    assertThat(message)
        .isEqualTo(notReadYet.getMessage())
        .contains("failed: java.lang.IllegalStateException: the failure");
  }

  /**
   * Runs group {@code g} with a sibling blocked until the group is cancelled, then a child failing
   * with {@code failure}; the sibling keeps in {@code sibling} the CancelledException a checkpoint
   * then throws it.
   */
  private static void failWithASibling(
      TaskGroup g, RuntimeException failure, AtomicReference<CancelledException> sibling) {
    CountDownLatch siblingIn = new CountDownLatch(1);
    catchThrowable(
        () ->
            g.run(
                () -> {
                  g.fork(
                      "sibling",
                      () -> {
                        try {
                          siblingIn.countDown();
                          Thread.sleep(60_000);
                        } catch (InterruptedException cancelled) {
                          try {
                            CancelScope.checkpoint();
                          } catch (CancelledException e) {
                            sibling.set(e);
                          }
                        }
                      });
                  siblingIn.await();
                  g.fork(
                      "bad",
                      () -> {
                        throw failure;
                      });
                }));
  }

  private static Throwable roundTrip(Throwable t) throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(t);
    }
    try (ObjectInputStream in =
        new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      return (Throwable) in.readObject();
    }
  }
}
