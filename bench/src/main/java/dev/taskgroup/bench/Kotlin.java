package dev.taskgroup.bench;

import kotlin.Unit;
import kotlin.coroutines.Continuation;
import kotlin.coroutines.EmptyCoroutineContext;
import kotlin.jvm.functions.Function2;
import kotlinx.coroutines.BuildersKt;
import kotlinx.coroutines.CoroutineScope;
import kotlinx.coroutines.CoroutineStart;
import kotlinx.coroutines.Dispatchers;

/**
 * The Kotlin coroutines peer, called from Java: {@code runBlocking { repeat(n) {
 * launch(Dispatchers.Default) {} } }}.
 *
 * <p>The owner (a virtual thread) blocks in {@code runBlocking}, whose body runs on the owner's own
 * event loop; each child is a coroutine launched on {@code Dispatchers.Default} (the structured
 * child of the {@code runBlocking} scope, which waits for it). A Java {@link Function2} that
 * returns without suspending is a valid suspend lambda.
 */
final class Kotlin {
  private Kotlin() {}

  /** The trivial child: returns at once. */
  private static final Function2<CoroutineScope, Continuation<? super Unit>, Object> NOTHING =
      (scope, continuation) -> Unit.INSTANCE;

  /**
   * Runs one structured scope that launches {@code children} trivial children and waits for them.
   */
  static void forkJoin(int children) throws InterruptedException {
    BuildersKt.runBlocking(
        EmptyCoroutineContext.INSTANCE,
        (CoroutineScope scope, Continuation<? super Unit> continuation) -> {
          for (int i = 0; i < children; i++) {
            BuildersKt.launch(scope, Dispatchers.getDefault(), CoroutineStart.DEFAULT, NOTHING);
          }
          return Unit.INSTANCE;
        });
  }
}
