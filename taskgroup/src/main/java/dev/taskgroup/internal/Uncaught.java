package dev.taskgroup.internal;

/**
 * Reports a throwable that no caller of the library can be handed: one thrown in a thread of the
 * library's own (the deadline timer, the re-delivery watcher), or by another thread's code while
 * the library interrupts that thread (a channel whose close fails, see {@link
 * ThreadState#interruptOther}). It goes to the default uncaught-exception handler, as if a thread
 * had died of it, or is printed when none is set; the thread that met it carries on. What the
 * handler throws is ignored, as the JVM ignores it for a thread that died.
 */
final class Uncaught {
  private Uncaught() {}

  static void report(Throwable t) {
    try {
      Thread.UncaughtExceptionHandler h = Thread.getDefaultUncaughtExceptionHandler();
      if (h != null) {
        h.uncaughtException(Thread.currentThread(), t);
      } else {
        t.printStackTrace();
      }
    } catch (Throwable ignored) {
      // Ignored: nobody is left to hand it to.
    }
  }
}
