package dev.taskgroup;

import java.lang.management.ManagementFactory;
import java.lang.ref.WeakReference;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.BooleanSupplier;
import javax.management.MBeanServer;
import javax.management.ObjectName;

/**
 * Run by {@link ClassLoaderUnloadTest} in a JVM of its own, with a short keep-alive for the
 * library's threads, the library's classes and this module's test classes given as the arguments,
 * and only this class's directory on the class path: each use of the library is in a class loader
 * of its own, as an application server loads each deployment. Prints one line per check.
 *
 * <ol>
 *   <li>Three loaders, each used on a thread that ends, then dropped: "collected 3 of 3 loaders"
 *       once the garbage collector has reclaimed every one (or how many it had not after 30 s, with
 *       the library threads still alive).
 *   <li>Two loaders in use at once (a group running in each): the JMX bean is the first one's; once
 *       that one is no longer used, the bean is the second's: "the bean moved to the copy in use".
 * </ol>
 */
public final class ClassLoaderUnloadMain {
  private ClassLoaderUnloadMain() {}

  private static URL[] urls;

  public static void main(String[] args) throws Exception {
    urls = new URL[] {Path.of(args[0]).toUri().toURL(), Path.of(args[1]).toUri().toURL()};
    unload();
    beanMoves();
  }

  /**
   * Classes the library's own threads loaded from a deployment's loader after the deployment's last
   * request had ended (see unload()).
   */
  private static final Set<String> loadedAfterTheEnd = ConcurrentHashMap.newKeySet();

  /**
   * The classes of the objects the library's threads begin with, which their starters make (a
   * thread that began by loading one died when its deployment had closed meanwhile), and the thread
   * that begins with each (the backstop begins with a Pass too).
   */
  private static final Map<String, String> STARTING_OBJECTS =
      Map.of(
          "dev.taskgroup.internal.Redelivery$Watches", "taskgroup-redelivery",
          "dev.taskgroup.internal.DeadlineTimer$Pass", "taskgroup-deadlines");

  /** Those of {@link #STARTING_OBJECTS} that a library thread loaded itself. */
  private static final Set<String> loadedByTheirOwnThread = ConcurrentHashMap.newKeySet();

  /** A deployment's loader, which notes what the library's threads load after {@code ended}. */
  private static final class DeploymentLoader extends URLClassLoader {
    volatile boolean ended;

    DeploymentLoader(String name) {
      super(name, urls, ClassLoader.getPlatformClassLoader());
    }

    @Override
    protected Class<?> findClass(String className) throws ClassNotFoundException {
      String thread = Thread.currentThread().getName();
      if (thread.startsWith("taskgroup-")) {
        if (ended) {
          loadedAfterTheEnd.add(thread + " " + className);
        }
        if (thread.equals(STARTING_OBJECTS.get(className))
            || (className.endsWith("$Pass") && thread.startsWith("taskgroup-deadline-backstop"))) {
          loadedByTheirOwnThread.add(thread + " " + className);
        }
      }
      return super.findClass(className);
    }
  }

  private static DeploymentLoader newLoader(String name) {
    return new DeploymentLoader(name);
  }

  private static void unload() throws Exception {
    List<WeakReference<ClassLoader>> loaders = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      DeploymentLoader loader = newLoader("deployment-" + i);
      Runnable work =
          (Runnable) loader.loadClass("dev.taskgroup.UnloadWork").getConstructor().newInstance();
      Thread t = deploymentThread(loader, work, "request-" + i);
      t.start();
      t.join();
      loader.ended = true; // its library threads may still be starting: they must load nothing
      loaders.add(new WeakReference<>(loader));
      loader.close();
    }
    boolean collected =
        within(
            30,
            () -> {
              System.gc();
              return loaders.stream().allMatch(ref -> ref.get() == null);
            });
    long kept = loaders.stream().filter(ref -> ref.get() != null).count();
    System.out.println("collected " + (3 - kept) + " of 3 loaders");
    // A server may close a deployment's loader as soon as its last request ends (as here): a
    // library thread started by that request must not need to load a class then.
    System.out.println("loaded by the library's threads after the end: " + loadedAfterTheEnd);
    System.out.println("what they begin with, loaded by themselves: " + loadedByTheirOwnThread);
    if (!collected) {
      System.out.println("threads alive: " + libraryThreads());
    }
  }

  private static void beanMoves() throws Exception {
    MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    ObjectName bean = new ObjectName("dev.taskgroup:type=TaskTree");
    CountDownLatch[] first = {new CountDownLatch(1), new CountDownLatch(1)};
    CountDownLatch[] second = {new CountDownLatch(1), new CountDownLatch(1)};
    Thread a = hold(newLoader("first"), "copy-first", first);
    first[0].await();
    within(10, () -> server.isRegistered(bean));
    Thread b = hold(newLoader("second"), "copy-second", second);
    second[0].await();
    String before = format(server, bean);
    first[1].countDown(); // the first copy is no longer used
    a.join();
    boolean moved = within(10, () -> format(server, bean).contains("copy-second"));
    System.out.println(
        before.contains("copy-first") && !before.contains("copy-second") && moved
            ? "the bean moved to the copy in use"
            : "the bean did not move: before ["
                + before
                + "] after ["
                + format(server, bean)
                + "]");
    second[1].countDown();
    b.join();
  }

  @SuppressWarnings("unchecked")
  private static Thread hold(ClassLoader loader, String name, CountDownLatch[] latches)
      throws Exception {
    BiConsumer<String, CountDownLatch[]> work =
        (BiConsumer<String, CountDownLatch[]>)
            loader.loadClass("dev.taskgroup.HoldWork").getConstructor().newInstance();
    Thread t = deploymentThread(loader, () -> work.accept(name, latches), name);
    t.start();
    return t;
  }

  /**
   * A thread of the deployment {@code loader}, as a server runs a request: its context class loader
   * is the deployment's. Whatever it throws ends this JVM, so that nothing waits for it for ever.
   */
  private static Thread deploymentThread(ClassLoader loader, Runnable work, String name) {
    Thread t = new Thread(work, name);
    t.setContextClassLoader(loader);
    t.setUncaughtExceptionHandler(
        (thread, e) -> {
          e.printStackTrace(System.out);
          Runtime.getRuntime().halt(1);
        });
    return t;
  }

  private static String format(MBeanServer server, ObjectName bean) {
    try {
      return (String) server.invoke(bean, "format", null, null);
    } catch (Exception absent) {
      return "(no bean: " + absent + ")";
    }
  }

  private static List<String> libraryThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .map(Thread::getName)
        .filter(n -> n.startsWith("taskgroup"))
        .toList();
  }

  /** Polls {@code condition} every 20 ms for up to {@code seconds}; whether it became true. */
  private static boolean within(int seconds, BooleanSupplier condition)
      throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - until > 0L) {
        return false;
      }
      Thread.sleep(20); // polls a condition nothing signals (a collection, a registration)
    }
    return true;
  }
}
