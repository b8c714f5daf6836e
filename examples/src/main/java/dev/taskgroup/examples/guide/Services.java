package dev.taskgroup.examples.guide;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Stand-ins for the slow, blocking services the guide's samples call: each blocks the way real I/O
 * does (interruptibly) and records what happened, so that the tests can check the samples.
 */
public final class Services {
  /** How many downloads run right now, and the most seen at once. */
  static final AtomicInteger RUNNING = new AtomicInteger();

  static final AtomicInteger MOST_AT_ONCE = new AtomicInteger();

  private Services() {}

  static String fetchUser(String id) throws InterruptedException {
    Thread.sleep(5);
    return "user " + id;
  }

  static int countOrders(String id) throws InterruptedException {
    Thread.sleep(5);
    return id.length();
  }

  /** Scans a shard; only the shard equal to the needle matches, and it answers quickly. */
  static boolean scan(int shard, int needle) throws InterruptedException {
    Thread.sleep(shard == needle ? 5 : 60_000);
    return shard == needle;
  }

  /** A download that takes a few milliseconds and counts how many run at once. */
  static int download(String url) throws InterruptedException {
    int now = RUNNING.incrementAndGet();
    MOST_AT_ONCE.accumulateAndGet(now, Math::max);
    try {
      Thread.sleep(5);
      return url.length();
    } finally {
      RUNNING.decrementAndGet();
    }
  }

  /** A job that fails when its name says so. */
  static void process(String job) throws InterruptedException {
    Thread.sleep(1);
    if (job.startsWith("bad")) {
      throw new IllegalArgumentException("cannot process " + job);
    }
  }

  /** A service that takes {@code millis} to answer. */
  static String ask(String question, long millis) throws InterruptedException {
    Thread.sleep(millis);
    return "answer to " + question;
  }
}
