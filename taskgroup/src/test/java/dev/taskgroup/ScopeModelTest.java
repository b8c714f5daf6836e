package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A model check of cancel-scope semantics: random programs (nested plain, shielded, cooperative and
 * deadline scopes, task groups whose children are deterministic, among them at most one PROGRAM
 * child running scopes of its own below the group; {@code cancel()}, {@code setShielded} and {@code
 * setDeadline} on any scope, before, while or after it runs; checkpoints, user failures, blocking
 * calls where a cancellation is certain to reach them) run against the library and against a small
 * reference model of Trio's rules as {@link CancelScope}'s javadoc states them ("The scope tree",
 * "Delivery", "Catching", "Interrupts") and {@link TaskGroup}'s ("When outcomes coincide"). Every
 * observation is compared: whether each checkpoint throws, {@code isCancelled()}, the interrupt
 * status on entering and after leaving every scope and at probes, what each {@code run}/{@code
 * call} returns or throws (failures of a group as a set), each scope's {@code
 * cancelCalled()}/{@code cancelCaught()}, and the final interrupt status. Where the library may set
 * the status from another thread at a moment of its own (the re-delivery watch after a blocking
 * call threw, an expired deadline delivered from a thread of its own) the model says "unknown"
 * until the next point that settles it, and a program that would then block is not compared; so is
 * one that depends on what the javadoc leaves open. The model follows Trio's {@code
 * CancelScope._close} (a Cancelled is caught by the scope that is cancelled when no cancelled scope
 * above it is visible) and {@code test_cancel_scope_nesting}, {@code test_shield_*} in
 * trio/_core/_tests/test_run.py (closest); the group precedence follows TaskGroup's javadoc.
 * Replay: {@code -DscopeModel.seed=N} (a run) or {@code -DscopeModel.program=N} (one program).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ScopeModelTest {
  @AfterEach
  void clearStatus() {
    Thread.interrupted();
  }

  // ----------------------------------------------------------------------------- programs

  enum Kind {
    PLAIN,
    SHIELDED,
    COOPERATIVE,
    PAST_DEADLINE,
    FUTURE_DEADLINE
  }

  enum ChildKind {
    RETURN,
    FAIL,
    /** Blocks until cancelled (by a failing sibling). */
    BLOCK,
    /** Blocks until cancelled, then fails from a shielded cleanup that checkpoints. */
    CLEANUP_FAIL,
    /**
     * Runs the group's {@code program} on its own thread: scopes of its own below the group, cancel
     * and shield any scope (the owner's too, which waits for its children meanwhile). Its only
     * siblings return at once, so nothing races with it.
     */
    PROGRAM
  }

  sealed interface Stmt {
    int sid();
  }

  /** A plain scope; {@code catchAll}: the run's outcome is recorded and not rethrown. */
  record ScopeStmt(
      int sid,
      int id,
      Kind kind,
      boolean catchAll,
      boolean useCall,
      List<Stmt> body,
      List<Stmt> fin)
      implements Stmt {}

  /** A group: body, then finally, then (if the body ended normally) fork the children. */
  record GroupStmt(
      int sid,
      int id,
      boolean collect,
      boolean timeoutZero,
      boolean catchAll,
      boolean useCall,
      List<Stmt> body,
      List<Stmt> fin,
      List<ChildKind> children,
      List<Stmt> program)
      implements Stmt {}

  /** {@code cancel()} on scope or group {@code target % ids}. */
  record Cancel(int sid, int target) implements Stmt {}

  record Shield(int sid, int target, boolean on) implements Stmt {}

  /** {@code setDeadline}: in the past (the epoch) or an hour from now. */
  record SetDeadline(int sid, int target, boolean past) implements Stmt {}

  record Checkpoint(int sid, boolean swallow) implements Stmt {}

  record ProbeCancelled(int sid) implements Stmt {}

  record ProbeStatus(int sid) implements Stmt {}

  record Throw(int sid) implements Stmt {}

  /** {@code new CountDownLatch(1).await()} if the interrupt status is set, else skipped. */
  record Block(int sid) implements Stmt {}

  record Program(long seed, List<Stmt> top, List<Stmt> decls) {
    int ids() {
      return decls.size();
    }

    boolean isGroup(int id) {
      return decls.get(id) instanceof GroupStmt;
    }
  }

  /** A user failure, identified by its message. */
  static final class UserFailure extends RuntimeException {
    UserFailure(String message) {
      super(message, null, false, false);
    }
  }

  // ---------------------------------------------------------------------------- generator

  static final class Generator {
    private final SplittableRandom rnd;
    private int sid;
    private final List<Stmt> decls = new ArrayList<>();

    Generator(long seed) {
      rnd = new SplittableRandom(seed);
    }

    Program program(long seed) {
      List<Stmt> top = new ArrayList<>();
      int n = 1 + rnd.nextInt(2);
      for (int i = 0; i < n; i++) {
        top.add(rnd.nextInt(3) == 0 ? group(0, List.of(), true) : scope(0, List.of(), true));
      }
      // decls are in creation order; a declaration's index is its id
      decls.sort((a, b) -> Integer.compare(idOf(a), idOf(b)));
      return new Program(seed, top, List.copyOf(decls));
    }

    private static int idOf(Stmt s) {
      return s instanceof ScopeStmt sc ? sc.id() : ((GroupStmt) s).id();
    }

    private int nextId = 0;

    private ScopeStmt scope(int depth, List<Integer> enclosing, boolean top) {
      int id = nextId++;
      int mySid = sid++;
      Kind kind = Kind.values()[rnd.nextInt(Kind.values().length)];
      List<Integer> inner = with(enclosing, id);
      List<Stmt> body = block(depth + 1, inner);
      List<Stmt> fin = rnd.nextInt(3) == 0 ? block(depth + 2, inner) : List.of();
      var s =
          new ScopeStmt(mySid, id, kind, top || rnd.nextInt(3) == 0, rnd.nextBoolean(), body, fin);
      decls.add(s);
      return s;
    }

    private GroupStmt group(int depth, List<Integer> enclosing, boolean top) {
      int id = nextId++;
      int mySid = sid++;
      List<Integer> inner = with(enclosing, id);
      List<Stmt> body = block(depth + 1, inner);
      List<Stmt> fin = rnd.nextInt(4) == 0 ? block(depth + 2, inner) : List.of();
      boolean collect = rnd.nextInt(4) == 0;
      List<ChildKind> children = new ArrayList<>();
      if (rnd.nextBoolean()) {
        int n = 1 + rnd.nextInt(3);
        int fails = 0;
        for (int i = 0; i < n; i++) {
          ChildKind k = ChildKind.values()[rnd.nextInt(collect ? 2 : 4)];
          children.add(k);
          if (k == ChildKind.FAIL) {
            fails++;
          }
        }
        if (fails == 0) {
          children.replaceAll(k -> k == ChildKind.FAIL ? k : ChildKind.RETURN);
        }
      }
      List<Stmt> program = List.of();
      if (children.isEmpty() ? rnd.nextInt(3) == 0 : rnd.nextInt(4) == 0) {
        children.replaceAll(k -> ChildKind.RETURN);
        children.add(rnd.nextInt(children.size() + 1), ChildKind.PROGRAM);
        program = block(depth + 1, inner);
      }
      var g =
          new GroupStmt(
              mySid,
              id,
              collect,
              rnd.nextInt(8) == 0,
              top || rnd.nextInt(3) == 0,
              rnd.nextBoolean(),
              body,
              fin,
              children,
              program);
      decls.add(g);
      return g;
    }

    private static List<Integer> with(List<Integer> list, int id) {
      List<Integer> l = new ArrayList<>(list);
      l.add(id);
      return l;
    }

    private int target(List<Integer> enclosing) {
      if (!enclosing.isEmpty() && rnd.nextInt(3) != 0) {
        return enclosing.get(rnd.nextInt(enclosing.size()));
      }
      return rnd.nextInt(1 << 16); // any scope: before, after, around (taken modulo the count)
    }

    private List<Stmt> block(int depth, List<Integer> enclosing) {
      List<Stmt> out = new ArrayList<>();
      int n = rnd.nextInt(depth >= 4 ? 3 : 5);
      for (int i = 0; i < n; i++) {
        int r = rnd.nextInt(100);
        if (r < 14 && depth < 4) {
          out.add(scope(depth, enclosing, false));
        } else if (r < 20 && depth < 4) {
          out.add(group(depth, enclosing, false));
        } else if (r < 40) {
          out.add(new Cancel(sid++, target(enclosing)));
        } else if (r < 46) {
          out.add(new Shield(sid++, target(enclosing), rnd.nextBoolean()));
        } else if (r < 50) {
          out.add(new SetDeadline(sid++, target(enclosing), rnd.nextInt(3) != 0));
        } else if (r < 68) {
          out.add(new Checkpoint(sid++, rnd.nextInt(3) == 0));
        } else if (r < 74) {
          out.add(new ProbeCancelled(sid++));
        } else if (r < 80) {
          out.add(new ProbeStatus(sid++));
        } else if (r < 86) {
          out.add(new Throw(sid++));
        } else {
          out.add(new Block(sid++));
        }
      }
      return out;
    }
  }

  static String print(Program p) {
    StringBuilder sb = new StringBuilder("program seed=" + p.seed() + "\n");
    print(p.top(), 1, sb, p);
    return sb.toString();
  }

  private static void print(List<Stmt> list, int indent, StringBuilder sb, Program p) {
    for (Stmt s : list) {
      sb.append("  ".repeat(indent));
      switch (s) {
        case ScopeStmt sc -> {
          sb.append(
              "s%d#%d %s%s%s {\n"
                  .formatted(
                      sc.id(),
                      sc.sid(),
                      sc.kind(),
                      sc.catchAll() ? " catch" : "",
                      sc.useCall() ? " call" : ""));
          print(sc.body(), indent + 1, sb, p);
          if (!sc.fin().isEmpty()) {
            sb.append("  ".repeat(indent)).append("} finally {\n");
            print(sc.fin(), indent + 1, sb, p);
          }
          sb.append("  ".repeat(indent)).append("}\n");
        }
        case GroupStmt g -> {
          sb.append(
              "g%d#%d %s%s%s%s children=%s {\n"
                  .formatted(
                      g.id(),
                      g.sid(),
                      g.collect() ? "COLLECT" : "CANCEL_ALL",
                      g.timeoutZero() ? " timeout0" : "",
                      g.catchAll() ? " catch" : "",
                      g.useCall() ? " call" : "",
                      g.children()));
          print(g.body(), indent + 1, sb, p);
          if (!g.fin().isEmpty()) {
            sb.append("  ".repeat(indent)).append("} finally {\n");
            print(g.fin(), indent + 1, sb, p);
          }
          if (!g.program().isEmpty()) {
            sb.append("  ".repeat(indent)).append("} then forks PROGRAM {\n");
            print(g.program(), indent + 1, sb, p);
          }
          sb.append("  ".repeat(indent)).append("}\n");
        }
        case Cancel c -> sb.append("#%d cancel %s\n".formatted(c.sid(), name(p, c.target())));
        case SetDeadline d ->
            sb.append(
                "#%d %s.setDeadline(%s)\n"
                    .formatted(d.sid(), name(p, d.target()), d.past() ? "past" : "future"));
        case Shield sh ->
            sb.append(
                "#%d %s.setShielded(%s)\n".formatted(sh.sid(), name(p, sh.target()), sh.on()));
        case Checkpoint cp ->
            sb.append("#%d checkpoint%s\n".formatted(cp.sid(), cp.swallow() ? " (swallowed)" : ""));
        case ProbeCancelled pc -> sb.append("#%d isCancelled?\n".formatted(pc.sid()));
        case ProbeStatus ps -> sb.append("#%d interrupted?\n".formatted(ps.sid()));
        case Throw t -> sb.append("#%d throw u%d\n".formatted(t.sid(), t.sid()));
        case Block b -> sb.append("#%d block\n".formatted(b.sid()));
      }
    }
  }

  private static String name(Program p, int target) {
    int id = target % p.ids();
    return (p.isGroup(id) ? "g" : "s") + id;
  }

  // ------------------------------------------------------------------------- the library

  /** Runs a program against the library, logging every observation. */
  static final class Real {
    final Program p;
    final Object[] objs;
    final List<String> log = new ArrayList<>();

    Real(Program p) {
      this.p = p;
      objs = new Object[p.ids()];
      for (Stmt d : p.decls()) {
        switch (d) {
          case ScopeStmt s ->
              objs[s.id()] =
                  switch (s.kind()) {
                    case PLAIN -> CancelScope.create();
                    case SHIELDED -> CancelScope.shielded();
                    case COOPERATIVE -> CancelScope.cooperative();
                    case PAST_DEADLINE -> CancelScope.withTimeout(Duration.ZERO);
                    case FUTURE_DEADLINE -> CancelScope.withTimeout(Duration.ofHours(1));
                  };
          case GroupStmt g -> {
            var b = TaskGroup.builder().name("g" + g.id());
            if (g.collect()) {
              b.failurePolicy(FailurePolicy.COLLECT);
            }
            if (g.timeoutZero()) {
              b.timeout(Duration.ZERO);
            }
            objs[g.id()] = b.build();
          }
          default -> throw new AssertionError(d);
        }
      }
    }

    List<String> run() {
      for (Stmt s : p.top()) {
        try {
          exec(s);
        } catch (Throwable t) {
          log.add("top threw " + describe(t));
        }
      }
      log.add("final status=" + Thread.currentThread().isInterrupted());
      log.add("final isCancelled=" + CancelScope.isCancelled());
      for (int id = 0; id < p.ids(); id++) {
        if (objs[id] instanceof CancelScope cs) {
          log.add("s%d caught=%s called=%s".formatted(id, cs.cancelCaught(), cs.cancelCalled()));
        } else {
          TaskGroup g = (TaskGroup) objs[id];
          log.add("g%d caught=%s called=%s".formatted(id, g.cancelCaught(), g.cancelCalled()));
        }
      }
      return log;
    }

    private CancelScope scopeOf(int target) {
      Object o = objs[target % objs.length];
      return o instanceof CancelScope cs ? cs : ((TaskGroup) o).cancelScope();
    }

    private void execList(List<Stmt> list) throws Exception {
      for (Stmt s : list) {
        exec(s);
      }
    }

    private void body(int id, List<Stmt> body, List<Stmt> fin) throws Exception {
      log.add("in" + id + " status=" + Thread.currentThread().isInterrupted());
      try {
        execList(body);
      } finally {
        execList(fin);
      }
    }

    private void exec(Stmt s) throws Exception {
      switch (s) {
        case Cancel c -> {
          Object o = objs[c.target() % objs.length];
          if (o instanceof CancelScope cs) {
            cs.cancel();
          } else {
            ((TaskGroup) o).cancel();
          }
        }
        case Shield sh -> scopeOf(sh.target()).setShielded(sh.on());
        case SetDeadline d ->
            scopeOf(d.target())
                .setDeadline(d.past() ? Instant.EPOCH : Instant.now().plus(Duration.ofHours(1)));
        case Checkpoint cp -> {
          try {
            CancelScope.checkpoint();
            log.add("cp" + cp.sid() + " threw=false");
          } catch (InterruptedException e) {
            log.add("cp" + cp.sid() + " threw=" + (e instanceof CancelledException));
            if (!cp.swallow()) {
              throw e;
            }
          }
        }
        case ProbeCancelled pc -> log.add("ic" + pc.sid() + "=" + CancelScope.isCancelled());
        case ProbeStatus ps ->
            log.add("st" + ps.sid() + "=" + Thread.currentThread().isInterrupted());
        case Throw t -> throw new UserFailure("u" + t.sid());
        case Block b -> {
          if (Thread.currentThread().isInterrupted()) {
            log.add("blk" + b.sid() + " ran");
            new CountDownLatch(1).await();
            log.add("blk" + b.sid() + " returned?!");
          } else {
            log.add("blk" + b.sid() + " skipped");
          }
        }
        case ScopeStmt sc -> {
          CancelScope cs = (CancelScope) objs[sc.id()];
          Throwable thrown = null;
          try {
            if (sc.useCall()) {
              Object r =
                  cs.call(
                      () -> {
                        body(sc.id(), sc.body(), sc.fin());
                        return "r" + sc.id();
                      });
              log.add("run" + sc.id() + " -> " + r);
            } else {
              cs.run(() -> body(sc.id(), sc.body(), sc.fin()));
              log.add("run" + sc.id() + " -> normal");
            }
          } catch (Throwable t) {
            thrown = t;
            log.add("run" + sc.id() + " -> " + describe(t));
          }
          log.add("after" + sc.id() + " status=" + Thread.currentThread().isInterrupted());
          if (thrown != null && !sc.catchAll()) {
            throw sneaky(thrown);
          }
        }
        case GroupStmt g -> {
          TaskGroup tg = (TaskGroup) objs[g.id()];
          Throwable thrown = null;
          try {
            if (g.useCall()) {
              Object r =
                  tg.call(
                      () -> {
                        groupBody(tg, g);
                        return "r" + g.id();
                      });
              log.add("run" + g.id() + " -> " + r);
            } else {
              tg.run(() -> groupBody(tg, g));
              log.add("run" + g.id() + " -> normal");
            }
          } catch (Throwable t) {
            thrown = t;
            log.add("run" + g.id() + " -> " + describe(t));
          }
          log.add("after" + g.id() + " status=" + Thread.currentThread().isInterrupted());
          if (thrown != null && !g.catchAll()) {
            throw sneaky(thrown);
          }
        }
      }
    }

    private void groupBody(TaskGroup tg, GroupStmt g) throws Exception {
      body(g.id(), g.body(), g.fin());
      long blocking =
          g.children().stream()
              .filter(k -> k != ChildKind.RETURN && k != ChildKind.PROGRAM)
              .count();
      CountDownLatch started = new CountDownLatch((int) blocking);
      // failing children last, and a failure waits until every child but the returning ones runs:
      // so each one is certainly cancelled (and its cleanup failure certainly happens), and no
      // failing child is cancelled before it ran
      for (ChildKind k :
          List.of(ChildKind.BLOCK, ChildKind.CLEANUP_FAIL, ChildKind.PROGRAM, ChildKind.RETURN)) {
        for (int i = 0; i < g.children().size(); i++) {
          if (g.children().get(i) == k) {
            String name = "c" + g.id() + "." + i;
            switch (k) {
              case BLOCK ->
                  tg.fork(
                      () -> {
                        started.countDown();
                        new CountDownLatch(1).await();
                      });
              case CLEANUP_FAIL ->
                  tg.fork(
                      () -> {
                        started.countDown();
                        try {
                          new CountDownLatch(1).await();
                        } catch (InterruptedException e) {
                          CancelScope.shielded().run(CancelScope::checkpoint);
                          throw new UserFailure(name);
                        }
                      });
              case PROGRAM ->
                  tg.fork(
                      () -> {
                        log.add("child of g" + g.id() + " status=" + Thread.interrupted());
                        execList(g.program());
                        return null;
                      });
              default -> tg.fork(() -> null);
            }
          }
        }
      }
      for (int i = 0; i < g.children().size(); i++) {
        if (g.children().get(i) == ChildKind.FAIL) {
          String name = "c" + g.id() + "." + i;
          tg.fork(
              () -> {
                started.countDown();
                while (started.getCount() > 0) {
                  try {
                    started.await(); // interrupted only by a sibling's failure, after the count
                  } catch (InterruptedException e) { // reached 0: no failure is lost here
                    // the loop ends: the count is 0
                  }
                }
                throw new UserFailure(name);
              });
        }
      }
    }
  }

  static String describe(Throwable t) {
    if (t instanceof UserFailure) {
      return t.getMessage();
    }
    if (t instanceof InterruptedException) {
      return "IE";
    }
    if (t instanceof TaskGroupException tge) {
      TreeSet<String> inner = new TreeSet<>();
      for (Throwable f : tge.failures()) {
        inner.add(describe(f));
      }
      return "TGE" + inner;
    }
    return "unexpected " + t;
  }

  @SuppressWarnings("unchecked")
  private static <X extends Throwable> RuntimeException sneaky(Throwable t) throws X {
    throw (X) t;
  }

  // ----------------------------------------------------------------------- the reference model

  /** An exception in the model: an InterruptedException, or a failure described as logged. */
  static final class Thrown extends RuntimeException {
    final boolean interrupted;
    final String desc;

    Thrown(boolean interrupted, String desc) {
      super(desc, null, false, false);
      this.interrupted = interrupted;
      this.desc = desc;
    }
  }

  static final class Node {
    boolean called;
    boolean internal;
    boolean shielded;
    boolean caught;
    int state; // 0 new, 1 running, 2 exited

    /** A deadline already due when run starts (a zero timeout, a past setDeadline before run). */
    boolean pendingPast;

    /** A past deadline set before run, or after exit: whether cancelCalled() shows it is unsaid. */
    boolean calledUnknown;

    boolean pastSetBeforeRun;

    /** The model thread that runs it (0: the owner; each PROGRAM child gets the next). */
    int home;

    boolean cancelled() {
      return called || internal;
    }
  }

  /**
   * Trio's rules, plainly. The thread's chain of running scopes; "effectively cancelled" from a
   * scope: it or a scope above it, up to and including the nearest shield, is cancelled. The
   * interrupt status is brought in line (set when effectively cancelled outside a cooperative
   * scope, else cleared) when the thread enters or leaves a scope, at a checkpoint, when it raises
   * a shield of its own; a new cancellation (or a lowered shield) delivers it at once.
   */
  static final class Model {
    final Program p;
    final Node[] nodes;
    final List<Integer> stack = new ArrayList<>();
    int cooperative;

    /** The model thread running now, and the last one made. */
    int thread;

    int threads;

    /**
     * The interrupt status; null when unknown: after a JDK call threw for the cancellation (and
     * cleared it), the re-delivery watch may set it again at any moment ("keep being interrupted if
     * they swallow the interrupt"), until the thread next settles it.
     */
    Boolean status = false;

    /** A blocking call was reached while the status was unknown: the program is not compared. */
    boolean racy;

    /** The program depends on something the javadoc leaves open: not compared. */
    boolean ambiguous;

    final List<String> log = new ArrayList<>();
    boolean outsideLooking;

    Model(Program p) {
      this.p = p;
      nodes = new Node[p.ids()];
      for (int i = 0; i < nodes.length; i++) {
        nodes[i] = new Node();
        if (p.decls().get(i) instanceof ScopeStmt s && s.kind() == Kind.SHIELDED) {
          nodes[i].shielded = true;
        }
        nodes[i].pendingPast =
            p.decls().get(i) instanceof ScopeStmt s
                ? s.kind() == Kind.PAST_DEADLINE
                : ((GroupStmt) p.decls().get(i)).timeoutZero();
      }
    }

    List<String> run() {
      for (Stmt s : p.top()) {
        try {
          exec(s);
        } catch (Thrown t) {
          log.add("top threw " + t.desc);
        }
      }
      log.add("final status=" + status);
      log.add("final isCancelled=" + ecFrom(stack.size() - 1));
      for (int id = 0; id < nodes.length; id++) {
        Node n = nodes[id];
        log.add(
            "%s%d caught=%s called=%s"
                .formatted(
                    p.isGroup(id) ? "g" : "s",
                    id,
                    n.caught,
                    n.calledUnknown && !n.called ? "?" : n.called));
      }
      return log;
    }

    /** Effectively cancelled at stack index {@code i} (code running innermost there). */
    boolean ecFrom(int i) {
      for (; i >= 0; i--) {
        Node n = nodes[stack.get(i)];
        if (n.cancelled()) {
          return true;
        }
        if (n.shielded) {
          return false;
        }
      }
      return false;
    }

    /** Whether a scope at or above stack index {@code i} is cancelled, shields or not. */
    boolean cancelledBehindShield(int i) {
      for (; i >= 0; i--) {
        if (nodes[stack.get(i)].cancelled()) {
          return true;
        }
      }
      return false;
    }

    boolean ec() {
      return ecFrom(stack.size() - 1);
    }

    void settle() {
      status = ec() && cooperative == 0;
    }

    void deliver() {
      if (ec() && cooperative == 0 && !Boolean.TRUE.equals(status)) {
        // While an expired deadline's delivery from a thread of its own may be in flight, a
        // delivery from this thread waits for it ("never two at once", ThreadState): it lands
        // soon, not at once. Every settle() waits for it, so it is known again there.
        status = asyncDelivery ? null : Boolean.TRUE;
      }
    }

    /** An expired deadline was delivered from a thread of its own in this program. */
    boolean asyncDelivery;

    void execList(List<Stmt> list) {
      for (Stmt s : list) {
        exec(s);
      }
    }

    /** Runs body then finally (whose exception replaces the body's); returns what escaped. */
    Thrown body(int id, List<Stmt> body, List<Stmt> fin) {
      log.add("in" + id + " status=" + status);
      Thrown thrown = null;
      try {
        execList(body);
      } catch (Thrown t) {
        thrown = t;
      }
      try {
        execList(fin);
      } catch (Thrown t) {
        thrown = t;
      }
      return thrown;
    }

    void exec(Stmt s) {
      switch (s) {
        case Cancel c -> {
          Node n = nodes[c.target() % nodes.length];
          boolean was = n.cancelled();
          n.called = true;
          if (n.state == 1 && !was) {
            deliver();
          }
        }
        case Shield sh -> {
          int id = sh.target() % nodes.length;
          Node n = nodes[id];
          boolean was = n.shielded;
          n.shielded = sh.on();
          if (sh.on() && !was && n.state == 1 && n.home == thread) {
            // Raised from the thread that runs it. Once it has exited it is no longer in any
            // thread's chain (and has forgotten its thread): raising its shield changes nothing
            // for the caller, whose swallowed interrupt comes back by re-delivery, not here.
            settle();
          } else if (!sh.on() && was && n.state == 1 && ecFrom(stack.indexOf(id))) {
            deliver();
          }
        }
        case SetDeadline d -> {
          Node n = nodes[d.target() % nodes.length];
          if (d.past()) {
            switch (n.state) {
              case 0 -> {
                n.pendingPast = true; // "one in the past cancels at once when run starts"
                n.calledUnknown = true;
                n.pastSetBeforeRun = true;
              }
              case 1 -> {
                boolean was = n.cancelled();
                n.called = true; // "while running it takes effect at once"
                if (!was) {
                  int at = stack.indexOf(d.target() % nodes.length);
                  boolean groupBelow = false;
                  for (int i = at; i < stack.size(); i++) {
                    groupBelow |= p.isGroup(stack.get(i));
                  }
                  if (groupBelow) {
                    asyncDelivery = true;
                  }
                  if (groupBelow && !Boolean.TRUE.equals(status) && ec() && cooperative == 0) {
                    // an expired deadline with a group below is delivered from a thread of its
                    // own (the walk may be long): the interrupt lands soon, not at once
                    status = null;
                  } else {
                    deliver();
                  }
                }
              }
              default -> n.calledUnknown = true; // after exit: unsaid
            }
          } else if (n.state == 0) {
            if (n.pastSetBeforeRun) {
              ambiguous = true; // is a past deadline set before run already a cancel? unsaid
            }
            n.pendingPast = false; // the later deadline replaces a zero timeout
          }
        }
        case Checkpoint cp -> {
          boolean cancelled = ec();
          settle();
          log.add("cp" + cp.sid() + " threw=" + cancelled);
          if (cancelled && !cp.swallow()) {
            throw new Thrown(true, "IE");
          }
        }
        case ProbeCancelled pc -> log.add("ic" + pc.sid() + "=" + ec());
        case ProbeStatus ps -> log.add("st" + ps.sid() + "=" + (status == null ? "?" : status));
        case Throw t -> throw new Thrown(false, "u" + t.sid());
        case Block b -> {
          if (status == null) {
            racy = true;
            throw new Thrown(true, "IE");
          }
          if (status) {
            log.add("blk" + b.sid() + " ran");
            status = null; // the JDK clears it as it throws; the watch may set it again
            throw new Thrown(true, "IE");
          }
          log.add("blk" + b.sid() + " skipped");
        }
        case ScopeStmt sc -> {
          Thrown out = null;
          String result;
          try {
            result =
                scope(sc) ? (sc.useCall() ? "null" : "normal") : returned(sc.useCall(), sc.id());
          } catch (Thrown t) {
            out = t;
            result = t.desc;
          }
          log.add("run" + sc.id() + " -> " + result);
          log.add("after" + sc.id() + " status=" + status);
          if (out != null && !sc.catchAll()) {
            throw out;
          }
        }
        case GroupStmt g -> {
          Thrown out = null;
          String result;
          try {
            result = group(g);
            if (!g.useCall()) {
              result = "normal";
            }
          } catch (Thrown t) {
            out = t;
            result = t.desc;
          }
          log.add("run" + g.id() + " -> " + result);
          log.add("after" + g.id() + " status=" + status);
          if (out != null && !g.catchAll()) {
            throw out;
          }
        }
      }
    }

    private static String returned(boolean call, int id) {
      return call ? "r" + id : "normal";
    }

    private void enter(int id) {
      nodes[id].state = 1;
      nodes[id].home = thread;
      stack.add(id);
      settle();
    }

    private void exit(int id) {
      stack.remove(stack.size() - 1);
      nodes[id].state = 2;
      settle();
    }

    /** A plain scope's run; true if it absorbed a cancellation (call returns null). */
    private boolean scope(ScopeStmt sc) {
      Node n = nodes[sc.id()];
      if (n.pendingPast) {
        n.called = true; // a zero timeout (or a past deadline) expires as run starts
      }
      boolean coop = sc.kind() == Kind.COOPERATIVE;
      if (coop) {
        cooperative++;
      }
      enter(sc.id());
      Thrown thrown = body(sc.id(), sc.body(), sc.fin());
      // "Catching": judged at the exit, where the thread is effectively cancelled or not
      boolean cancellation = thrown != null && thrown.interrupted && ec();
      boolean aboveVisible = !n.shielded && ecFrom(stack.size() - 2);
      if (coop) {
        cooperative--;
      }
      exit(sc.id());
      if (cancellation && n.cancelled() && !aboveVisible) {
        n.caught = true;
        return true;
      }
      if (thrown != null) {
        throw thrown;
      }
      return false;
    }

    /**
     * Runs a group's PROGRAM child on a model thread of its own, whose chain is the owner's down to
     * the group (the owner waits for its children meanwhile, and is never interrupted there), then
     * its own scopes; returns its failure, or null (it ended normally or with the cancellation).
     */
    private String child(GroupStmt g) {
      List<Integer> ownerStack = new ArrayList<>(stack);
      Boolean ownerStatus = status;
      int ownerCooperative = cooperative;
      int ownerThread = thread;
      thread = ++threads;
      status = false;
      cooperative = 0; // "It covers the calling thread only"
      Thrown thrown = null;
      log.add("child of g" + g.id() + " status=false");
      try {
        execList(g.program());
      } catch (Thrown t) {
        thrown = t;
      }
      boolean cancelled = ec(); // at the task's root: the group and what is above it
      stack.clear();
      stack.addAll(ownerStack);
      status = ownerStatus;
      cooperative = ownerCooperative;
      thread = ownerThread;
      if (thrown == null || (thrown.interrupted && cancelled)) {
        return null;
      }
      return thrown.desc;
    }

    /** A group's run ("When outcomes coincide"); returns what call returns. */
    private String group(GroupStmt g) {
      Node n = nodes[g.id()];
      if (n.pendingPast) {
        n.called = true;
        asyncDelivery = true; // a group's expired deadline is delivered from a thread of its own
      }
      enter(g.id());
      Thrown thrown = body(g.id(), g.body(), g.fin());
      List<String> failures = new ArrayList<>();
      boolean ownerInterrupted = false;
      boolean passThrough = false;
      if (thrown == null) {
        if (!ec()) { // "If the group is effectively cancelled the work is not started"
          boolean anyFail = false;
          for (int i = 0; i < g.children().size(); i++) {
            if (g.children().get(i) == ChildKind.FAIL) {
              failures.add("c" + g.id() + "." + i);
              anyFail = true;
            }
          }
          if (g.children().contains(ChildKind.PROGRAM)) {
            String failure = child(g);
            if (failure != null) {
              failures.add(failure);
              if (!g.collect()) {
                n.internal = true;
              }
            }
          }
          if (anyFail && !g.collect()) {
            n.internal = true; // the first failure cancels the rest
            for (int i = 0; i < g.children().size(); i++) {
              if (g.children().get(i) == ChildKind.CLEANUP_FAIL) {
                failures.add("c" + g.id() + "." + i);
              }
            }
          }
        }
      } else if (thrown.interrupted && ec()) {
        // the cancellation: not a failure
      } else if (thrown.interrupted && cancelledBehindShield(stack.size() - 2)) {
        // the cancellation of a scope further out, hidden by a shield the body raised: the
        // library's own interrupt, which passes through unchanged, as from a plain scope (Trio:
        // an exception from a nursery's body cancels the nursery and propagates)
        passThrough = true;
        n.internal = true;
      } else if (thrown.interrupted) {
        // nothing cancelled anywhere above: taken for someone else's interrupt (case 2), whose
        // IE a cancelled scope further out sets again when it absorbs it: not modelled
        ownerInterrupted = true;
        n.internal = true;
        outsideLooking = true;
      } else {
        failures.add(thrown.desc);
        n.internal = true;
      }
      boolean aboveVisible = !n.shielded && ecFrom(stack.size() - 2);
      exit(g.id());
      if (!failures.isEmpty()) {
        throw new Thrown(false, "TGE" + new TreeSet<>(failures));
      }
      if (ownerInterrupted) {
        status = false;
        throw new Thrown(true, "IE");
      }
      if (passThrough || aboveVisible) {
        throw new Thrown(true, "IE");
      }
      if (n.called) {
        n.caught = true; // the join is a checkpoint: caught even if the body had returned
      }
      return thrown == null ? "r" + g.id() : "null";
    }
  }

  // ------------------------------------------------------------------------------ the tests

  /** Equal, except that an expected "x=?" matches any "x=..." (an unknown interrupt status). */
  private static boolean matches(List<String> expected, List<String> actual) {
    if (expected.size() != actual.size()) {
      return false;
    }
    for (int i = 0; i < expected.size(); i++) {
      String e = expected.get(i);
      String a = actual.get(i);
      boolean same = e.endsWith("=?") ? a.startsWith(e.substring(0, e.length() - 1)) : e.equals(a);
      if (!same) {
        return false;
      }
    }
    return true;
  }

  /** Replays one program on the calling thread and returns the mismatch, or null. */
  /** How often the programs checked hit each interesting outcome (printed, to see coverage). */
  private static final java.util.Map<String, Integer> COVERAGE =
      new java.util.concurrent.ConcurrentSkipListMap<>();

  private static void count(List<String> expected) {
    for (String line : expected) {
      for (String what :
          List.of(
              "threw=true",
              "caught=true",
              " ran",
              "TGE",
              "-> IE",
              "-> null",
              "status=true",
              "=true",
              "child of")) {
        if (line.contains(what)) {
          COVERAGE.merge(what, 1, Integer::sum);
        }
      }
    }
  }

  static String check(Program p) {
    Model model = new Model(p);
    List<String> expected = model.run();
    if (model.racy) {
      COVERAGE.merge("skipped (blocking call after a swallowed interrupt)", 1, Integer::sum);
      return null;
    }
    if (model.ambiguous) {
      COVERAGE.merge("skipped (ambiguous)", 1, Integer::sum);
      return null;
    }
    if (model.outsideLooking) {
      COVERAGE.merge("skipped (taken for an outside interrupt)", 1, Integer::sum);
      return null;
    }
    count(expected);
    List<String> actual = new Real(p).run();
    Thread.interrupted();
    if (matches(expected, actual)) {
      return null;
    }
    StringBuilder sb = new StringBuilder(print(p));
    int n = Math.max(expected.size(), actual.size());
    for (int i = 0; i < n; i++) {
      String e = i < expected.size() ? expected.get(i) : "-";
      String a = i < actual.size() ? actual.get(i) : "-";
      sb.append(e.equals(a) ? "    " : " !! ").append(e);
      if (!e.equals(a)) {
        sb.append("   (library: ").append(a).append(")");
      }
      sb.append('\n');
    }
    return sb.toString();
  }

  /** The program being checked, printed if the run hangs. */
  private static volatile Program current;

  /**
   * Checks {@code count} programs on a thread of their own, so that a hang names its program (the
   * class timeout would only show the stack).
   */
  private static int checkAll(long seed, int count, List<String> mismatches) throws Exception {
    int[] failed = {0};
    Thread runner =
        Thread.ofPlatform()
            .daemon()
            .start(
                () -> {
                  SplittableRandom seeds = new SplittableRandom(seed);
                  for (int i = 0; i < count; i++) {
                    long programSeed = seeds.nextLong();
                    Program p = new Generator(programSeed).program(programSeed);
                    current = p;
                    String mismatch = check(p);
                    if (mismatch != null) {
                      failed[0]++;
                      if (mismatches.size() < 3) {
                        mismatches.add(mismatch);
                      }
                    }
                  }
                  current = null;
                });
    runner.join(Duration.ofSeconds(45));
    if (runner.isAlive()) {
      Program p = current;
      StringBuilder stack = new StringBuilder();
      for (StackTraceElement e : runner.getStackTrace()) {
        stack.append("\n  at ").append(e);
      }
      throw new AssertionError("hung in\n" + (p == null ? "?" : print(p)) + stack);
    }
    return failed[0];
  }

  @Test
  void randomProgramsFollowTheModel() throws Exception {
    Long one = Long.getLong("scopeModel.program"); // replays one program, by its own seed
    if (one != null) {
      String mismatch = check(new Generator(one).program(one));
      assertThat(mismatch).as("program %d", one).isNull();
      return;
    }
    long seed = Probes.seed("scopeModel.seed", "ScopeModelTest");
    int programs = Integer.getInteger("scopeModel.programs", 3000);
    List<String> mismatches = java.util.Collections.synchronizedList(new ArrayList<>());
    int failed = checkAll(seed, programs, mismatches);
    System.out.println("ScopeModelTest coverage (observations): " + COVERAGE);
    mismatches.forEach(System.out::println);
    assertThat(failed).as("programs that differ from the model (seed=%d)", seed).isZero();
  }

  // ------------------------------------------------------- reproductions of what the model found

  // CancelScope javadoc "Interrupts": an interrupt the library delivered for a scope never
  // survives that scope's exit; "Catching": an InterruptedException that leaves a scope where
  // nothing is cancelled passes through unchanged. Closest upstream: Trio
  // test_nursery_cancel_doesnt_create_cyclic_garbage / test_cancel_shield_abort (a Cancelled
  // raised in a nursery body propagates out of the nursery and is caught by the cancelled scope).
  // The group's body raises the group's shield on its way out with the outer cancellation: the
  // group took the library's own exception for someone else's interrupt (OutsideInterruptException)
  // and the cancelled outer scope, absorbing it, set the interrupt again after its exit.
  @RepeatedTest(20)
  void aCancellationLetOutOfAGroupByItsOwnShieldLeavesNoInterruptBehind() throws Exception {
    var outer = CancelScope.create();
    var group = TaskGroup.create();
    Throwable[] fromGroup = {null};
    outer.run(
        () -> {
          outer.cancel();
          try {
            group.run(
                () -> {
                  try {
                    CancelScope.checkpoint();
                  } finally {
                    group.cancelScope().setShielded(true);
                  }
                });
          } catch (InterruptedException e) {
            fromGroup[0] = e;
            throw e;
          }
        });
    assertThat(fromGroup[0])
        .as("the checkpoint's own exception")
        .isInstanceOf(CancelledException.class);
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(group.cancelCaught()).isFalse();
    assertThat(Thread.currentThread().isInterrupted()).as("interrupt after outer's exit").isFalse();
  }

  // The same with the InterruptedException of a blocking JDK call (the delivered interrupt).
  @RepeatedTest(20)
  void aBlockingCallsCancellationLetOutOfAGroupByItsOwnShieldLeavesNoInterruptBehind()
      throws Exception {
    var outer = CancelScope.create();
    var group = TaskGroup.create();
    outer.run(
        () -> {
          outer.cancel();
          group.run(
              () -> {
                try {
                  new CountDownLatch(1).await();
                } finally {
                  group.cancelScope().setShielded(true);
                }
              });
        });
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).as("interrupt after outer's exit").isFalse();
  }

  // The shield is raised on a plain scope between the group and the cancelled scope; the group's
  // run must then throw, and the scope further out that absorbs it must leave no interrupt.
  @RepeatedTest(20)
  void aShieldRaisedBetweenAGroupAndTheCancelledScopeLeavesNoInterruptBehind() throws Exception {
    var outer = CancelScope.create();
    var middle = CancelScope.create();
    var group = TaskGroup.create();
    List<String> after = new ArrayList<>();
    outer.run(
        () -> {
          outer.cancel();
          middle.run(
              () ->
                  group.run(
                      () -> {
                        try {
                          CancelScope.checkpoint();
                        } finally {
                          middle.setShielded(true);
                        }
                      }));
          after.add("reached"); // middle does not absorb: it is not cancelled
        });
    assertThat(after).isEmpty();
    assertThat(middle.cancelCaught()).isFalse();
    assertThat(outer.cancelCaught()).isTrue();
    assertThat(Thread.currentThread().isInterrupted()).as("interrupt after outer's exit").isFalse();
  }
}
