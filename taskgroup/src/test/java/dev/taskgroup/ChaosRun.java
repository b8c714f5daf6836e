package dev.taskgroup;

import dev.taskgroup.ChaosPlan.Act;
import dev.taskgroup.ChaosPlan.GroupNode;
import dev.taskgroup.ChaosPlan.Leaf;
import dev.taskgroup.ChaosPlan.Node;
import dev.taskgroup.ChaosPlan.ScopeNode;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Runs one {@link ChaosPlan} and records what the invariants need: which failures were injected,
 * which were handed to handlers, which nodes threw, and every violation seen while running (a group
 * that returned while a child was alive, an interrupt left on an owner).
 */
final class ChaosRun {
  /** A failure the tree injected on purpose; its id says which leaf threw it. */
  interface Injected {
    int id();
  }

  /** An injected unchecked failure. */
  static final class InjectedFailure extends RuntimeException implements Injected {
    private final int id;

    InjectedFailure(int id) {
      super("injected failure #" + id, null, false, false);
      this.id = id;
    }

    @Override
    public int id() {
      return id;
    }
  }

  /** An injected checked failure. */
  static final class InjectedChecked extends Exception implements Injected {
    private final int id;

    InjectedChecked(int id) {
      super("injected checked failure #" + id, null, false, false);
      this.id = id;
    }

    @Override
    public int id() {
      return id;
    }
  }

  /** An injected I/O failure: an IOException may look like a cancellation's. */
  static final class InjectedIo extends IOException implements Injected {
    private final int id;

    InjectedIo(int id) {
      super("injected I/O failure #" + id);
      this.id = id;
    }

    @Override
    public int id() {
      return id;
    }
  }

  /** An injected socket timeout: an InterruptedIOException that is never a cancellation. */
  static final class InjectedTimeout extends SocketTimeoutException implements Injected {
    private final int id;

    InjectedTimeout(int id) {
      super("injected socket timeout #" + id);
      this.id = id;
    }

    @Override
    public int id() {
      return id;
    }
  }

  // Shared blocking infrastructure: a lock that is always held, a queue that is always empty,
  // and a server that accepts connections and never writes.
  private static final ReentrantLock HELD = new ReentrantLock();
  private static final BlockingQueue<Object> EMPTY = new LinkedBlockingQueue<>();
  private static final ServerSocket SILENT_SERVER;
  private static final Queue<Socket> ACCEPTED = new ConcurrentLinkedQueue<>();

  static {
    Thread holder =
        Thread.ofPlatform()
            .daemon()
            .name("chaos-lock-holder")
            .start(
                () -> {
                  HELD.lock();
                  LockSupport.park(); // holds it for the life of the JVM
                });
    // Not waited for here: the holder runs code of this class, which waits for this
    // initializer. Until it holds the lock, a LOCK leaf just gets it and lets it go.
    try {
      SILENT_SERVER = new ServerSocket(0, 1000, InetAddress.getLoopbackAddress());
    } catch (IOException e) {
      throw new ExceptionInInitializerError(e);
    }
    Thread.ofPlatform()
        .daemon()
        .name("chaos-silent-server")
        .start(
            () -> {
              while (true) {
                try {
                  Socket s = SILENT_SERVER.accept();
                  ACCEPTED.add(s);
                  while (ACCEPTED.size() > 500) {
                    ACCEPTED.poll().close();
                  }
                } catch (IOException e) {
                  return;
                }
              }
            });
    assert holder.isAlive();
  }

  final ChaosPlan plan;
  final Object[] nodes;
  final AtomicIntegerArray liveChildren;

  /** Each group's maxConcurrency (0: unbounded), by node id. */
  private final int[] limits;

  /** 1 when a node's run threw, 2 when a scope's body completed normally. */
  final AtomicIntegerArray outcome;

  final Set<Integer> injected = ConcurrentHashMap.newKeySet();
  final Queue<Throwable> handled = new ConcurrentLinkedQueue<>();
  final Queue<String> violations = new ConcurrentLinkedQueue<>();

  /** Every thread the tree's groups made (half virtual, half platform). */
  final Queue<Thread> threads = new ConcurrentLinkedQueue<>();

  volatile Thread rootThread;

  /** Whether the root's interrupt status was clear when the tree interrupted it. */
  volatile boolean rootStatusClearWhenInterrupted;

  /** Whether the root thread itself swallowed an interrupt (then it may lose an outside one). */
  volatile boolean rootSwallowed;

  ChaosRun(ChaosPlan plan) {
    this.plan = plan;
    this.nodes = new Object[plan.nodes];
    this.liveChildren = new AtomicIntegerArray(plan.nodes);
    this.limits = new int[plan.nodes];
    this.outcome = new AtomicIntegerArray(plan.nodes);
    create(plan.root);
  }

  private void create(Node n) {
    switch (n) {
      case GroupNode g -> {
        boolean platform = g.id() % 3 == 2;
        TaskGroup.Builder b =
            TaskGroup.builder()
                .name("group#" + g.id())
                .threadFactory(
                    r -> {
                      Thread t =
                          platform
                              ? Thread.ofPlatform().unstarted(r)
                              : Thread.ofVirtual().unstarted(r);
                      threads.add(t);
                      return t;
                    });
        if (g.collect()) {
          b.failurePolicy(FailurePolicy.COLLECT);
          if (g.handler()) {
            b.onFailure(handled::add);
          }
        }
        if (g.maxConcurrency() > 0) {
          b.maxConcurrency(g.maxConcurrency());
          limits[g.id()] = g.maxConcurrency();
        }
        if (g.timeoutMillis() >= 0) {
          b.timeout(Duration.ofMillis(g.timeoutMillis()));
        }
        TaskGroup group = b.build();
        group.cancelScope().setShielded(g.shielded());
        nodes[g.id()] = group;
        g.children().forEach(this::create);
        g.body().forEach(this::create);
      }
      case ScopeNode s -> {
        CancelScope scope = s.shielded() ? CancelScope.shielded() : CancelScope.create();
        if (s.timeoutMillis() >= 0) {
          scope.setTimeout(Duration.ofMillis(s.timeoutMillis()));
        }
        nodes[s.id()] = scope;
        s.body().forEach(this::create);
      }
      case Leaf l -> {}
    }
  }

  /** Runs the tree on the calling thread; returns what the root group threw, or null. */
  Throwable execute() {
    rootThread = Thread.currentThread();
    try {
      run(plan.root, List.of());
      return null;
    } catch (Throwable t) {
      return t;
    }
  }

  private void run(Node n, List<TaskGroup> enclosing) throws Exception {
    switch (n) {
      case GroupNode g -> runGroup(g, enclosing);
      case ScopeNode s -> runScope(s, enclosing);
      case Leaf l -> runLeaf(l, enclosing);
    }
  }

  private void runGroup(GroupNode g, List<TaskGroup> enclosing) throws Exception {
    TaskGroup group = (TaskGroup) nodes[g.id()];
    List<TaskGroup> inside = with(enclosing, group);
    boolean threw = true;
    try {
      group.run(
          () -> {
            owners.put(group, Thread.currentThread());
            for (Node c : g.children()) {
              forkCounted(group, g.id(), c, inside);
            }
            for (Node b : g.body()) {
              run(b, inside);
            }
          });
      threw = false;
    } finally {
      if (liveChildren.get(g.id()) != 0) {
        violations.add("group#" + g.id() + " ended while a child was still running");
      }
      if (threw) {
        outcome.set(g.id(), 1);
      } else {
        checkNoLeakedInterrupt("group#" + g.id());
      }
    }
  }

  private void forkCounted(TaskGroup group, int groupId, Node work, List<TaskGroup> inside) {
    group.fork(
        () -> {
          liveChildren.incrementAndGet(groupId);
          try {
            run(work, inside);
          } finally {
            liveChildren.decrementAndGet(groupId);
          }
          return null;
        });
  }

  private void runScope(ScopeNode s, List<TaskGroup> enclosing) throws Exception {
    CancelScope scope = (CancelScope) nodes[s.id()];
    boolean threw = true;
    try {
      scope.run(
          () -> {
            for (Node b : s.body()) {
              run(b, enclosing);
            }
            outcome.set(s.id(), 2);
          });
      threw = false;
    } finally {
      if (threw) {
        outcome.set(s.id(), 1);
      } else {
        checkNoLeakedInterrupt("scope#" + s.id());
      }
    }
  }

  /**
   * After a run returned normally: the thread's interrupt status may be set only if it is still in
   * a cancelled region (level-triggered delivery) or someone interrupted it from outside.
   */
  private void checkNoLeakedInterrupt(String where) {
    boolean status = Thread.currentThread().isInterrupted();
    if (status && !CancelScope.isCancelled() && !(plan.interruptsRoot && onRoot())) {
      violations.add("interrupt status left set after " + where + " returned normally");
    }
  }

  private boolean onRoot() {
    return Thread.currentThread() == rootThread;
  }

  private void runLeaf(Leaf l, List<TaskGroup> enclosing) throws Exception {
    switch (l.act()) {
      case RETURN -> {}
      case FAIL -> {
        injected.add(l.failureId());
        throw new InjectedFailure(l.failureId());
      }
      case SLEEP, PARK, LOCK, QUEUE, SOCKET -> block(l.act(), l.millis());
      case SWALLOW -> {
        if (onRoot()) {
          rootSwallowed = true;
        }
        for (int i = 0; i < l.repeats(); i++) {
          try {
            block(l.inner(), l.millis());
            if (l.inner() == Act.PARK) {
              Thread.interrupted(); // swallow what woke the park
            }
          } catch (InterruptedException swallowed) {
            // keeps going: level-triggered delivery must catch up with it
          }
        }
      }
      case CANCEL -> {
        if (l.millis() > 0) {
          Thread.sleep(l.millis()); // the plan's random timing; orders nothing checked
        }
        if (l.target() < nodes.length) {
          if (nodes[l.target()] instanceof TaskGroup g) {
            g.cancel("chaos");
          } else {
            ((CancelScope) nodes[l.target()]).cancel("chaos");
          }
        }
      }
      case FORK_INTO -> {
        if (!enclosing.isEmpty()) {
          int up = Math.min(l.target(), enclosing.size() - 1);
          int index = enclosing.size() - 1 - up;
          TaskGroup into = enclosing.get(index);
          int id = Integer.parseInt(into.name().substring("group#".length()));
          forkCounted(into, id, l.forked(), enclosing.subList(0, index + 1));
        }
      }
      case CLEANUP_FAIL -> cleanupFail(l);
      case GET_FAILED -> getFailed(l, enclosing);
      case INTERRUPT_ROOT -> {
        if (l.millis() > 0) {
          Thread.sleep(l.millis()); // the plan's random timing; orders nothing checked
        }
        rootStatusClearWhenInterrupted = !rootThread.isInterrupted();
        rootThread.interrupt();
      }
    }
  }

  /** Blocks, then throws an injected failure from a shield, in one of three shapes. */
  private void cleanupFail(Leaf l) throws Exception {
    CancelScope.Block<Exception> fail =
        () -> {
          injected.add(l.failureId());
          throw switch (l.kind()) {
            case UNCHECKED -> new InjectedFailure(l.failureId());
            case CHECKED -> new InjectedChecked(l.failureId());
            case IO -> new InjectedIo(l.failureId());
            case SOCKET_TIMEOUT -> new InjectedTimeout(l.failureId());
          };
        };
    switch (l.shape()) {
      case FINALLY -> {
        try {
          block(l.inner(), l.millis());
        } finally {
          CancelScope.shielded().run(fail);
        }
      }
      case AFTER_SWALLOWING -> {
        if (onRoot()) {
          rootSwallowed = true;
        }
        try {
          block(l.inner(), l.millis());
        } catch (InterruptedException swallowed) {
          // the cleanup below fails; the cancellation goes on being delivered
        }
        CancelScope.shielded().run(fail);
      }
      case NESTED_SHIELDS -> {
        try {
          block(l.inner(), l.millis());
        } finally {
          CancelScope.shielded()
              .run(() -> CancelScope.create().run(() -> CancelScope.shielded().run(fail)));
        }
      }
    }
  }

  /**
   * Forks a failing child into the innermost enclosing group and reads it with get(), letting
   * whatever get() throws go up: the failure must still be reported exactly once.
   */
  private void getFailed(Leaf l, List<TaskGroup> enclosing) throws Exception {
    if (enclosing.isEmpty()) {
      return;
    }
    TaskGroup into = enclosing.get(enclosing.size() - 1);
    int id = Integer.parseInt(into.name().substring("group#".length()));
    if (limits[id] > 0 && !onOwnerOf(into)) {
      return; // a child waiting for a child of a bounded group may wait for its own place
    }
    Task<Object> failing =
        into.fork(
            () -> {
              liveChildren.incrementAndGet(id);
              try {
                injected.add(l.failureId());
                throw new InjectedFailure(l.failureId());
              } finally {
                liveChildren.decrementAndGet(id);
              }
            });
    if (failing.isCancelled() && !CancelScope.isCancelled()) {
      return; // fork was interrupted from outside while it waited for a place: nothing started
    }
    failing.get();
  }

  private final java.util.Map<TaskGroup, Thread> owners = new ConcurrentHashMap<>();

  private boolean onOwnerOf(TaskGroup g) {
    return owners.get(g) == Thread.currentThread();
  }

  private static void block(Act kind, int millis) throws InterruptedException, IOException {
    switch (kind) {
      case SLEEP -> Thread.sleep(millis);
      case PARK -> {
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        long left;
        while (!Thread.currentThread().isInterrupted() && (left = until - System.nanoTime()) > 0) {
          LockSupport.parkNanos(left);
        }
      }
      case LOCK -> {
        if (HELD.tryLock(millis, TimeUnit.MILLISECONDS)) {
          HELD.unlock(); // never happens: the lock is always held
        }
      }
      case QUEUE -> EMPTY.poll(millis, TimeUnit.MILLISECONDS);
      case SOCKET -> readSilentSocket(millis);
      default -> throw new IllegalArgumentException(kind.toString());
    }
  }

  private static void readSilentSocket(int millis) throws InterruptedException, IOException {
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), SILENT_SERVER.getLocalPort())) {
      s.setSoTimeout(millis);
      InputStream in = s.getInputStream();
      in.read();
    } catch (SocketTimeoutException timeout) {
      // nothing came, as planned
    } catch (IOException e) {
      if (Thread.currentThread().isInterrupted() && CancelScope.isCancelled()) {
        // A cancellation closed the socket (virtual thread): the plain IOException goes up as
        // it is, and the library must count it as the cancellation.
        throw e;
      }
      if (Thread.currentThread().isInterrupted()) {
        InterruptedException ie = new InterruptedException("socket read interrupted");
        ie.initCause(e);
        throw ie; // an outside interrupt of the root: not a cancellation
      }
      throw new IllegalStateException("loopback socket failed", e);
    }
  }

  private static List<TaskGroup> with(List<TaskGroup> list, TaskGroup g) {
    List<TaskGroup> copy = new ArrayList<>(list);
    copy.add(g);
    return List.copyOf(copy);
  }
}
