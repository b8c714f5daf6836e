package dev.taskgroup.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes RESULTS.md from what {@link Compare} measured: the prose and tables of each workload; the
 * numbers and the verdicts on the targets are kept in {@link Findings}.
 */
final class Report {
  private final Findings findings = new Findings();

  private final Map<String, List<String>> memoryClasses = new LinkedHashMap<>();
  private final Map<String, Map<String, String>> deadlines = new LinkedHashMap<>();
  private String date;
  private String loadStart;
  private String loadEnd;
  private long wallNanos;
  private boolean sts;
  private boolean points = true;
  private CurveReport curves;

  void environment(String load) {
    date = Compare.now();
    loadStart = load;
  }

  void finish(long wallNanos, String load, boolean sts, boolean points) {
    this.wallNanos = wallNanos;
    this.loadEnd = load;
    this.sts = sts;
    this.points = points;
  }

  void curves(CurveReport curves) {
    this.curves = curves;
  }

  void put(String workload, String impl, Measured m) {
    findings.put(workload, impl, m);
  }

  void memoryClasses(String impl, List<String> lines) {
    memoryClasses.put(impl, lines);
  }

  void deadlines(String impl, Map<String, String> values) {
    deadlines.put(impl, values);
  }

  // ---- the report -------------------------------------------------------------------------------

  String markdown() {
    StringBuilder b = new StringBuilder();
    b.append("# taskgroup benchmark results\n\n");
    b.append("Written by the comparison in `bench/` (README, \"Benchmarks\"): ");
    b.append("`./mvnw -q -Pbench clean verify -DskipTests");
    if (curves != null) {
      b.append(" -Dbench.curves=").append(curves.mode().name().toLowerCase(Locale.ROOT));
    }
    if (!points) {
      b.append(" -Dbench.points=false");
    }
    b.append("`, one run, every implementation side by side. Total wall time of the comparison: ")
        .append(String.format(Locale.ROOT, "%.1f min", wallNanos / 60e9))
        .append(". Do not compare these numbers with other machines; compare the ratios.\n\n");
    b.append(Machine.markdown(date, loadStart, loadEnd));
    howToRead(b);
    int targetsAt = b.length();
    if (points) {
      forkJoin(b);
      cancel(b);
      memory(b);
      million(b);
      deadline(b);
      checkpoint(b);
    }
    if (curves != null) {
      try {
        b.append(curves.markdown());
      } catch (IOException e) {
        throw new UncheckedIOException("could not draw the plots", e);
      }
      findings.verdicts(curves.verdicts());
    }
    b.insert(targetsAt, findings.targets());
    return b.toString();
  }

  private void howToRead(StringBuilder b) {
    b.append("## How to read this\n\n");
    if (!points) {
      b.append("- This run measured the curves only (`-Dbench.points=false`): no point ")
          .append("workload, so most targets are not in it.\n");
    }
    b.append("- **Every owner runs on a virtual thread, for every implementation.** The JMH ")
        .append("benchmarks ((a), (b), (f)) run in forks started with `-Djmh.executor=VIRTUAL` ")
        .append("(JMH 1.37), so the benchmark thread, which is the owner (or the thread that ")
        .append("cancels), is virtual; the harnesses ((c), (d), (e)) start their owners and ")
        .append("drivers on virtual threads themselves. Children are virtual threads for raw, ")
        .append("taskgroup, StructuredTaskScope and the executor; Kotlin's children are ")
        .append("coroutines on `Dispatchers.Default`.\n");
    b.append("- **One carrier.** The point workloads (a) to (f) run with the virtual-thread ")
        .append("scheduler on one carrier (`-Djdk.virtualThreadScheduler.parallelism=1`), where ")
        .append("the numbers are unimodal on 2 cores and the targets are judged; the curves ")
        .append("below show one and two carriers.\n");
    b.append("- **Heap touched first.** Every JMH fork starts with `-XX:+AlwaysPreTouch`: on a ")
        .append("virtual machine that returns freed memory to its host, the first touch of each ")
        .append("page is slow, and a fork would otherwise pay for its first pass through the ")
        .append("heap in its warm-up and first measured iterations.\n");
    b.append("- **±** on a JMH number is JMH's score error: the half-width of the 99.9% ")
        .append("confidence interval. On a harness number it is the sample standard deviation ")
        .append("over its rounds or JVMs (said per table).\n");
    b.append("- **vs raw** is the implementation's number divided by raw's; its ± is the ")
        .append("propagated error, `r * sqrt((e/x)^2 + (e_raw/raw)^2)`.\n");
    b.append("- **Verdict**: PASS when the measured value meets the target; \"(within error)\" ")
        .append("when the ± interval crosses the threshold, so the verdict could flip on ")
        .append("another run.\n");
    if (!sts) {
      b.append("- This run had no StructuredTaskScope peer (built without `-Pbench`).\n");
    }
    b.append("\n");
  }

  // ---- workloads ----------------------------------------------------------------------------

  private void forkJoin(StringBuilder b) {
    b.append("## (a) fork + join of trivial children\n\n");
    b.append("A new group (scope, executor, `runBlocking`) per operation; the children do ")
        .append("nothing. Raw with one child: `Thread.ofVirtual().start(r)` + `join()`. Raw with ")
        .append("100: the owner starts 100 virtual threads, each counts down one shared ")
        .append("`AtomicInteger`, and the owner parks until the last one unparks it. taskgroup: ")
        .append("`run` + `fork`, `run` returns when the children are done. STS: `open()`, ")
        .append("`fork`, `join()`, `close()`. Executor: `newVirtualThreadPerTaskExecutor()`, ")
        .append("`submit`, `close()`. Kotlin: `runBlocking { launch(Dispatchers.Default) {} }` ")
        .append(
            "called from Java (the owner's body runs on its own event loop; the children run on ")
        .append(
            "`Dispatchers.Default`, whose workers are platform threads). JMH average time, 2 forks x (4 x 0.5 s warm-up + 10 x 0.5 s ")
        .append("measurement). The FreshOwner rows run each operation's owner on a new virtual ")
        .append("thread (raw and taskgroup alike): taskgroup then pays per operation what a ")
        .append("thread pays once, its state and its entry in the task tree's registry of root ")
        .append(
            "threads, with no JFR recording on (the diagnostics' bookkeeping at its worst).\n\n");
    b.append("`taskgroupPropagator`: taskgroup with one context propagator that does nothing ")
        .append("(`work -> work`), its group built by a `TaskGroup.Builder`; `taskgroup` has ")
        .append("none. The target: within 1.1x of `taskgroup`.\n\n");
    b.append("`taskgroupWithoutFeatures`: the same as `taskgroup`, in forks started with ")
        .append("`-Ddev.taskgroup.internal.withoutFeatures=true`, which takes the hooks of the ")
        .append("optional features (context propagators, JFR events, the test clock) out of the ")
        .append("fork, run and scope-entry paths. The switch is a `static final` the JIT folds, ")
        .append("so this row runs the code a build without those features would run (the ")
        .append("benchmark's set-up checks that the switch took). The target: `taskgroup`, with ")
        .append("no propagator, no recording and no test clock, within 3% of it.\n\n");
    b.append("### One child per group (time per group)\n\n");
    findings.table(b, "a1");
    b.append("### 100 children per group (time per child)\n\n");
    findings.table(b, "a100");
    floorOfStructure(b);
    Measured one = findings.ratio("a1", "taskgroup");
    findings.atMost("(a) one child: taskgroup at most 1.1x raw", one, 1.1);
    findings.below("(a) one child: taskgroup below STS", "a1", "sts");
    Measured hundred = findings.ratio("a100", "taskgroup");
    findings.atMost("(a) 100 children: taskgroup per child at most 1.1x raw", hundred, 1.1);
    findings.below("(a) 100 children: taskgroup below STS", "a100", "sts");
    findings.below("(a) 100 children: taskgroup below the executor", "a100", "executor");
    findings.atMost(
        "(a) one child: no propagator, JFR recording or test clock within 3% of the build"
            + " without those features",
        findings.ratio("a1", "taskgroup", "taskgroupWithoutFeatures"), 1.03);
    findings.atMost(
        "(a) 100 children: no propagator, JFR recording or test clock within 3% of the build"
            + " without those features",
        findings.ratio("a100", "taskgroup", "taskgroupWithoutFeatures"), 1.03);
    findings.atMost(
        "(a) one child: one no-op context propagator at most 1.1x none",
        findings.ratio("a1", "taskgroupPropagator", "taskgroup"),
        1.1);
    findings.atMost(
        "(a) 100 children: one no-op context propagator at most 1.1x none",
        findings.ratio("a100", "taskgroupPropagator", "taskgroup"),
        1.1);
  }

  /**
   * What the 100-children row is read against: raw plus what any group of threads that hands back a
   * handle per child needs ({@code ForkJoinHundred.rawWithBookkeeping}), measured in the same run.
   */
  private void floorOfStructure(StringBuilder b) {
    Measured floor = findings.ratio("a100", "rawWithBookkeeping");
    Measured over = findings.ratio("a100", "taskgroup", "rawWithBookkeeping");
    if (floor == null || over == null) {
      return;
    }
    b.append("`rawWithBookkeeping` is not a peer. It is raw plus what every group of threads ")
        .append("that hands back a handle per child needs and raw does without: the handle, a ")
        .append("new object per child, which its thread runs and marks done as it ends (a ")
        .append("release store); a way for code running on the thread to find it (the thread's ")
        .append("uncaught-exception handler, as in the library: one volatile store per child, ")
        .append("the cheapest per-thread slot the JDK offers); and a count of children not known ")
        .append("in advance (one atomic increment per fork, one decrement per end). It measured ")
        .append(String.format(Locale.ROOT, "%.2fx ± %.2f", floor.score(), floor.error()))
        .append(" raw, and taskgroup ")
        .append(String.format(Locale.ROOT, "%.2fx ± %.2f", over.score(), over.error()))
        .append(" of it. Beyond it, a taskgroup child costs one more atomic instruction: its ")
        .append("outcome is set by a compare-and-set, because `Task.cancel()` may race it (the ")
        .append("child's link in the group's list rides on the count's atomic step). ")
        .append("`ForkProfile` (README, \"Benchmarks\") shows where the time goes, by JFR ")
        .append("execution samples: most of it in the JDK's thread creation, start, scheduling ")
        .append("and end; in the library's share, the atomic steps come first. The ")
        .append("cheaper-looking per-thread slots cost memory instead: a `ThreadLocal` makes a ")
        .append("map per child, and a `ScopedValue` binding (JDK 25) kept its frames and ")
        .append("objects on every parked child's stack: measured once with `MemoryProbe` on a ")
        .append("build that used one, 914.6 instead of 610.7 bytes per parked child, above ")
        .append("`StructuredTaskScope` (target (c)).\n\n");
  }

  private void cancel(StringBuilder b) {
    b.append("## (b) cancel of a group of parked children\n\n");
    b.append("N children, each in `while (!Thread.currentThread().isInterrupted()) ")
        .append("LockSupport.park();`. Each iteration starts N fresh children and waits until ")
        .append("every one has checked in and its thread is `WAITING` (outside the timing), then ")
        .append("times one cancel. Set-up begins with a full GC, so that no collection runs ")
        .append("while the children start and park. That was the slow mode of this workload: ")
        .append("a young collection during set-up moves the stacks of the children parked so ")
        .append("far, and the cancel then thaws them on the JDK's slow path; it happened in ")
        .append("about one iteration in ten, which then took 1.3 to 2.5 times as long, for raw ")
        .append("and taskgroup alike (`CancelModeProbe` prints, per iteration, the cancel time ")
        .append("and the collections during set-up). ")
        .append("Raw: the owner interrupts its threads in start order, then ")
        .append("joins each. taskgroup: `group.cancel()` (from the benchmark thread; the owner is ")
        .append("another virtual thread, waiting for its children) until `run` returns. STS: ")
        .append("the owner, waiting in `join()`, is interrupted; timed until `close()` returned ")
        .append("(it interrupts and waits for every child). Executor: `shutdownNow()` + ")
        .append("`close()`. Kotlin: not run: coroutines cancel at suspension points, and a ")
        .append("thread parked in `LockSupport.park()` is not one (the workload needs N blocked ")
        .append("threads and interrupt-based cancellation, which do not translate). JMH single ")
        .append("shot, 2 forks x (5 warm-up + 20 measured) iterations, heap 4 GiB.\n\n");
    for (String n : List.of("10000", "100000")) {
      b.append("### N = ").append(n).append("\n\n");
      findings.table(b, "b/" + n);
    }
    b.append("### N = 100000, one full GC at the end of set-up\n\n");
    b.append("The same, but set-up ends with `System.gc()`, so every parked child's stack (a ")
        .append("heap object) has been through a GC, as the stack of a thread parked for long ")
        .append("has; the JDK then thaws the waking children's stacks on its slow path, for ")
        .append("every implementation. Not a target; shown because it changes the absolute ")
        .append("numbers and the spread.\n\n");
    findings.table(b, "bgc/100000");
    b.append("### N = 100000, cancel called from a platform thread\n\n");
    b.append("The same as the first N = 100000 table, but the cancel (and the wait until ")
        .append("everything has ended) runs on one platform thread kept for the whole run, ")
        .append("handed over from the benchmark thread (`CancelFrom`).\n\n");
    findings.table(b, "bplat/100000");
    b.append("### 75th percentiles (N = 100000)\n\n");
    b.append("JMH's 75th percentile of the same single-shot samples: the slow mode the targets ")
        .append("rule out would show here first.\n\n");
    b.append("From the benchmark thread (virtual):\n\n");
    findings.table(b, "b/100000/p75");
    b.append("From a platform thread:\n\n");
    findings.table(b, "bplat/100000/p75");
    for (String[] from : new String[][] {{"b", "a virtual"}, {"bplat", "a platform"}}) {
      String w = from[0] + "/100000";
      String who = "called from " + from[1] + " thread";
      findings.atMost(
          "(b) cancel of 100 000 parked children, " + who + ": taskgroup at most 1.1x raw",
          findings.ratio(w, "taskgroup"),
          1.1);
      findings.atMost(
          "(b) cancel of 100 000 parked children, "
              + who
              + ": taskgroup's 75th percentile within 1.2x raw's",
          findings.ratio(w + "/p75", "taskgroup"),
          1.2);
      findings.below(
          "(b) cancel of 100 000 parked children, " + who + ": taskgroup below STS", w, "sts");
    }
  }

  private void memory(StringBuilder b) {
    b.append("## (c) memory per parked child\n\n");
    b.append("Not JMH: `MemoryProbe` in a fresh JVM per measurement (heap 4 GiB, G1, ")
        .append("`-Xbatch` so that the measured children run compiled code, not code the JIT ")
        .append("is between discarding and compiling again), 3 JVMs ")
        .append("per implementation. Used heap after full GCs (`System.gc()` repeated until two ")
        .append("readings agree within 64 KiB, read with `MemoryMXBean`) before and after ")
        .append("100 000 children are started and parked, divided by 100 000. A parked virtual ")
        .append("thread's stack is a heap object (`jdk.internal.vm.StackChunk`), so this counts ")
        .append("the whole child. Raw keeps its `Thread[]` (it needs it to cancel); taskgroup ")
        .append("keeps its list of tasks; STS (`open()`, `fork`, the owner in `join()`) and the ")
        .append("executor (`submit`) keep what they keep. ± is the standard deviation over the ")
        .append("JVMs.\n\n");
    findings.table(b, "c");
    b.append("Bytes per parked child by class (class histogram with N children parked minus ")
        .append("the one before they started, through the `gcClassHistogram` diagnostic command; ")
        .append("first JVM of each implementation; classes adding at least 0.5 byte per child; ")
        .append("instances per child in brackets; largest first):\n\n");
    b.append(MemoryTable.markdown(memoryClasses));
    // Shown as taskgroup's bytes against STS's, not as ratios to raw (which read like a miss of
    // a 1.0x target). Two doubles from heap readings are never equal: below is at most.
    findings.below("(c) memory per parked child: taskgroup at most STS", "c", "sts");
    if (findings.get("c-held") != null) {
      b.append("### Held finished children (context, no target)\n\n");
      b.append("`HeldProbe`, fresh JVMs as above: N = 100 000 children each return a result ")
          .append("made beforehand, and the caller keeps every handle after all have finished ")
          .append("(a list of results): taskgroup's `Task`, STS's `Subtask`, the executor's ")
          .append("`Future` (`submit` on a virtual thread per task) and `CompletableFuture.")
          .append(
              "supplyAsync` on that executor (`cf`). Used heap after full GCs before and after, ")
          .append("divided by N: what one held handle keeps, the results not counted.\n\n");
      findings.table(b, "c-held");
    }
  }

  private void million(StringBuilder b) {
    b.append("## (d) one group with 1 000 000 parked children\n\n");
    b.append("Not JMH: `MillionProbe`, one fresh JVM per implementation (`-Xms8g -Xmx16g`), a ")
        .append("JIT warm-up of 10 rounds at 100 000 children (start, park, cancel), a warm-up ")
        .append("round at 1 000 000, then ")
        .append(Compare.MILLION_ROUNDS)
        .append(" measured rounds. Start: from the owner's first fork ")
        .append("until the last child checked in (each child checks in right before its park ")
        .append("loop); then every thread is checked to be `WAITING` (not timed). Cancel: raw ")
        .append("interrupts in start order and joins each; taskgroup `group.cancel()` until `run` ")
        .append("returns. Without the JIT warm-up, cancel rounds took 8-10 s instead of about 1 s ")
        .append("while the code under the parked frames was still C1 code: for raw in its first ")
        .append("round, for taskgroup in its first three (until `TaskImpl.run` reached C2). ")
        .append("± is the standard deviation over the rounds.\n\n");
    b.append("### Start all 1 000 000\n\n");
    findings.table(b, "d/start");
    b.append("### Cancel all 1 000 000\n\n");
    findings.table(b, "d/cancel");
    Map<String, Measured> d = findings.get("d/cancel");
    boolean held = d != null && d.containsKey("taskgroup");
    findings.verdict(
        "(d) one group holds 1 000 000 concurrent parked children",
        held ? "all started, parked and cancelled" : "did not run",
        held ? "PASS" : "MISS");
    findings.atMost(
        "(d) 1 000 000: start within 1.1x raw", findings.ratio("d/start", "taskgroup"), 1.1);
    findings.atMost(
        "(d) 1 000 000: cancel within 1.5x raw", findings.ratio("d/cancel", "taskgroup"), 1.5);
  }

  private void deadline(StringBuilder b) {
    b.append("## (e) deadline lateness, 10 000 concurrent deadlines\n\n");
    b.append("Not JMH: `DeadlineProbe`, one fresh JVM (heap 2 GiB) in which raw and taskgroup ")
        .append("take turns, round by round, so that both see the same machine. 10 000 virtual ")
        .append("threads are released together; thread i enters ")
        .append("`CancelScope.moveOnAfter(deadline_i - now, body)` with deadlines spread evenly ")
        .append("over a 1 s window starting 500 ms later (every scope is open before the first ")
        .append("deadline), and the body blocks in `Thread.sleep(60 s)`. Lateness = the moment ")
        .append("the body caught the `InterruptedException` (observed) or `moveOnAfter` returned ")
        .append("(returned), minus the deadline; the library reads its own clock a little after ")
        .append("ours, so these slightly overstate it. Raw: the same threads in ")
        .append("`Thread.sleep(deadline_i - now)`, i.e. the JDK's own timer under the same load. ")
        .append("A warm-up round, then 5 rounds each, pooled (50 000 samples). Milliseconds.\n\n");
    b.append("| implementation | observed median | observed p99 | returned median | ")
        .append("returned p99 | returned max | timed out | last scope entry vs first ")
        .append("deadline |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    deadlines.forEach(
        (impl, v) ->
            b.append("| ")
                .append(impl)
                .append(" | ")
                .append(v.get("observed.median"))
                .append(" | ")
                .append(v.get("observed.p99"))
                .append(" | ")
                .append(v.get("returned.median"))
                .append(" | ")
                .append(v.get("returned.p99"))
                .append(" | ")
                .append(v.get("returned.max"))
                .append(" | ")
                .append(v.get("timedOut"))
                .append(" / ")
                .append(v.get("samples"))
                .append(" | ")
                .append(v.get("lastEntryVsFirstDeadlineMs"))
                .append(" |\n"));
    b.append("\n");
    Map<String, String> tg = deadlines.get("taskgroup");
    if (tg != null) {
      double p99 = Double.parseDouble(tg.get("returned.p99"));
      findings.verdict(
          "(e) deadlines: p99 lateness at most 2 ms with 10 000",
          String.format(
              Locale.ROOT, "p99 %.3f ms (returned), median %s ms", p99, tg.get("returned.median")),
          p99 <= 2.0 ? "PASS" : "MISS");
    }
  }

  private void checkpoint(StringBuilder b) {
    b.append("## (f) nothing cancelled: checkpoint and scope entry/exit\n\n");
    b.append("A loop of 1024 operations inside one uncancelled `CancelScope` (its own entry ")
        .append("and exit are amortised, about 0.1 ns per operation), reported per operation. ")
        .append("Baseline: `Thread.currentThread().isInterrupted()` into a `Blackhole`. ")
        .append("JMH average time, 1 fork, 3 x 1 s warm-up, 5 x 1 s measurement. The ")
        .append("targets: at most 3 ns for a checkpoint and at most 20 ns for entering and ")
        .append("leaving a nested scope, with nothing cancelled.\n\n");
    b.append("| operation | time | ± |\n| --- | ---: | ---: |\n");
    Map<String, Measured> f = findings.get("f") != null ? findings.get("f") : Map.of();
    f.forEach(
        (op, m) ->
            b.append("| ")
                .append(op)
                .append(" | ")
                .append(Findings.fmt(m.score()))
                .append(' ')
                .append(m.unit())
                .append(" | ")
                .append(Findings.fmt(m.error()))
                .append(" |\n"));
    b.append("\n");
    Measured cp = f.get("checkpoint");
    if (cp != null) {
      findings.atMost("(f) uncancelled `checkpoint()` at most 3 ns", cp, 3);
    }
    Measured ns = f.get("nestedScope");
    if (ns != null) {
      findings.atMost("(f) uncancelled nested scope entry + exit at most 20 ns", ns, 20);
    }
  }
}
