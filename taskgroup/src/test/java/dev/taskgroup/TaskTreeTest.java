package dev.taskgroup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The task tree, and toString() of groups, scopes and tasks: what runs, and in what state. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TaskTreeTest {

  /** Spins (no sleep) until {@code ok} holds for a fresh capture's text; returns that text. */
  private static String awaitTree(Predicate<String> ok) {
    for (; ; ) {
      String text = TaskTree.capture().format();
      if (ok.test(text)) {
        return text;
      }
      Thread.onSpinWait();
      Thread.yield();
    }
  }

  /** A child body that swallows every interrupt until {@code stop} is counted down. */
  private static java.util.concurrent.Callable<Void> swallowing(
      CountDownLatch entered, CountDownLatch stop) {
    return () -> {
      entered.countDown();
      while (stop.getCount() > 0) {
        try {
          stop.await();
        } catch (InterruptedException swallowed) {
          // the mistake the tree and the warning are there to find
        }
      }
      return null;
    };
  }

  @RepeatedTest(3)
  void toStringGivesNameAndState() throws Exception {
    TaskGroup group = TaskGroup.named("ts-group");
    assertThat(group.toString()).isEqualTo("TaskGroup[ts-group, new]");
    CountDownLatch release = new CountDownLatch(1);
    Task<?>[] task = new Task<?>[1];
    Thread owner =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    group.run(
                        () ->
                            task[0] =
                                group.fork("ts-child", () -> release.await(1, TimeUnit.MINUTES)));
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    while (java.util.concurrent.locks.LockSupport.getBlocker(owner) == null) {
      Thread.onSpinWait(); // the owner parks only once it waits for the child
    }
    assertThat(group.toString()).isEqualTo("TaskGroup[ts-group, joining]");
    Object blocker = java.util.concurrent.locks.LockSupport.getBlocker(owner);
    assertThat(blocker).hasToString("TaskGroup[ts-group, joining]");
    assertThat(TaskTree.capture().format())
        .contains(
            "group 'ts-group' joining #"
                + owner.threadId()
                + " \"\" parked on <"
                + java.util.Objects.toIdentityString(blocker)
                + ">\n");
    assertThat(group.cancelScope().toString()).isEqualTo("CancelScope[group 'ts-group', joining]");
    assertThat(task[0].toString()).isEqualTo("Task[ts-child, running]");
    release.countDown();
    owner.join();
    assertThat(group.toString()).isEqualTo("TaskGroup[ts-group, done]");
    assertThat(task[0].toString()).isEqualTo("Task[ts-child, done]");
  }

  @RepeatedTest(3)
  void cancelledGroupAndScopeSayCancelled() throws Exception {
    TaskGroup group = TaskGroup.named("tc-group");
    CancelScope scope = CancelScope.create();
    assertThat(scope.toString()).isEqualTo("CancelScope[new]");
    group.run(
        () -> {
          assertThat(group.toString()).isEqualTo("TaskGroup[tc-group, running]");
          scope.run(
              () -> {
                assertThat(scope.toString()).isEqualTo("CancelScope[running]");
                group.cancel("test");
                assertThat(scope.toString()).isEqualTo("CancelScope[cancelled]");
                assertThat(group.toString()).isEqualTo("TaskGroup[tc-group, cancelled]");
              });
        });
    assertThat(scope.toString()).isEqualTo("CancelScope[done]");
  }

  @RepeatedTest(3)
  void captureShowsGroupTasksAndScopesIndented() throws Exception {
    TaskGroup group = TaskGroup.named("cap-group");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork(
              "cap-child",
              () ->
                  CancelScope.withTimeout(Duration.ofHours(1))
                      .call(
                          () -> {
                            entered.countDown();
                            release.await();
                            return null;
                          }));
          entered.await();
          String text = awaitTree(t -> t.contains("scope running"));
          long me = Thread.currentThread().threadId();
          assertThat(text)
              .contains("group 'cap-group' running #" + me)
              .containsPattern("\n└─ task 'cap-child' running #\\d+ \"cap-child\"\n")
              .containsPattern("\n   └─ scope running #\\d+ \"cap-child\" deadline=\\d{4}-");
          release.countDown();
        });
    assertThat(TaskTree.capture().format()).doesNotContain("cap-group");
  }

  @RepeatedTest(3)
  void swallowingChildShowsCancelledWithRedeliveries() throws Exception {
    TaskGroup group = TaskGroup.named("sw-group");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork("sw-child", swallowing(entered, stop));
          entered.await();
          CancelScope.shielded()
              .run(
                  () -> {
                    group.cancel("enough");
                    String text =
                        awaitTree(
                            t -> t.matches("(?s).*'sw-child' cancelled.*redeliveries=[2-9].*"));
                    assertThat(text)
                        .containsPattern(
                            "task 'sw-child' cancelled #\\d+ \"sw-child\" redeliveries=\\d+"
                                + " \\(cancelled by thread \"[^\"]*\": enough, \\d+ ms ago\\)");
                    stop.countDown();
                  });
        });
  }

  /**
   * A task whose own code cancels a scope or group nested in it is not cancelled: the nested node
   * says "cancelled", with its reason; the task says "running", in the tree and in its toString(),
   * as a group does in the same place.
   */
  @ParameterizedTest
  @ValueSource(booleans = {false, true, false, true})
  void aTaskIsNotShownCancelledForACancelledScopeOrGroupInsideIt(boolean nestedGroup)
      throws Exception {
    TaskGroup group = TaskGroup.named("outer-group");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    group.run(
        () -> {
          Task<?> worker =
              group.fork(
                  "worker",
                  () -> {
                    if (nestedGroup) {
                      TaskGroup inner = TaskGroup.named("inner-group");
                      inner.run(
                          () -> {
                            inner.cancel("inner only");
                            swallowing(entered, stop).call();
                          });
                    } else {
                      CancelScope inner = CancelScope.create();
                      inner.run(
                          () -> {
                            inner.cancel("inner only");
                            swallowing(entered, stop).call();
                          });
                    }
                    return "done";
                  });
          try {
            entered.await();
            String text = awaitTree(t -> t.contains("inner only"));
            assertThat(text)
                .containsPattern("task 'worker' running #\\d+ \"worker\"\n")
                .containsPattern(
                    (nestedGroup ? "group 'inner-group'" : "scope")
                        + " cancelled #\\d+ \"worker\".*"
                        + "\\(cancelled by thread \"worker\": inner only");
            assertThat(worker.toString()).isEqualTo("Task[worker, running]");
            assertThat(worker.isCancelled()).isFalse();
          } finally {
            stop.countDown(); // a failed assertion must not leave the child swallowing
          }
          assertThat(worker.get()).isEqualTo("done");
        });
  }

  @RepeatedTest(2)
  void anExpiredDeadlineSaysHowLongAgoItFired() throws Exception {
    TaskGroup group = TaskGroup.named("dl-group");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch stop = new CountDownLatch(1);
    group.run(
        () -> {
          group.fork(
              "dl-child",
              () ->
                  CancelScope.withTimeout(Duration.ofMillis(1))
                      .call(swallowing(entered, stop)::call));
          entered.await();
          String text = awaitTree(t -> t.contains("scope cancelled"));
          assertThat(text)
              .containsPattern(
                  "└─ scope cancelled #\\d+ \"dl-child\" deadline=\\S+"
                      + "( redeliveries=\\d+)? \\(deadline expired, \\d+ ms ago\\)\n");
          stop.countDown();
        });
  }

  @RepeatedTest(2)
  void jsonHasTheNodeFieldsAndThreadIdsJoinWithJcmd(@org.junit.jupiter.api.io.TempDir Path dir)
      throws Exception {
    TaskGroup group = TaskGroup.named("js-\"group\"");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    group.run(
        () -> {
          Task<?> child =
              group.fork(
                  "js-child",
                  () -> {
                    entered.countDown();
                    release.await();
                    return null;
                  });
          entered.await();
          String json = TaskTree.capture().toJson();
          assertThat(json)
              .startsWith("{\"roots\":[")
              .contains(
                  "{\"kind\":\"group\",\"name\":\"js-\\\"group\\\"\",\"state\":\"running\","
                      + "\"threadId\":"
                      + Thread.currentThread().threadId())
              .containsPattern(
                  "\\{\"kind\":\"task\",\"name\":\"js-child\",\"state\":\"running\","
                      + "\"threadId\":\\d+,\"threadName\":\"js-child\",\"deadline\":null,"
                      + "\"cancelReason\":null,\"cancelledMillisAgo\":null,\"redeliveries\":0,"
                      + "\"children\":\\[\\]\\}")
              .endsWith("]}");
          Matcher m =
              Pattern.compile("\"name\":\"js-child\",\"state\":\"running\",\"threadId\":(\\d+)")
                  .matcher(json);
          assertThat(m.find()).isTrue();
          assertThat(threadIdsInJcmdDump(dir)).contains(m.group(1));
          release.countDown();
          assertThat(child).isNotNull();
        });
  }

  /** Runs {@code jcmd <this pid> Thread.dump_to_file -format=json} and returns its dump. */
  private static String threadIdsInJcmdDump(Path dir) throws Exception {
    Path java = Path.of(ProcessHandle.current().info().command().orElseThrow());
    Path jcmd = java.resolveSibling("jcmd");
    Path out = dir.resolve("threads.json");
    Process p =
        new ProcessBuilder(
                jcmd.toString(),
                Long.toString(ProcessHandle.current().pid()),
                "Thread.dump_to_file",
                "-format=json",
                out.toString())
            .redirectErrorStream(true)
            .start();
    String said = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor()).as(said).isZero();
    StringBuilder tids = new StringBuilder();
    Matcher m = Pattern.compile("\"tid\":\\s*\"?(\\d+)").matcher(Files.readString(out));
    while (m.find()) {
      tids.append(' ').append(m.group(1)).append(' ');
    }
    return tids.toString();
  }

  /**
   * The bean is registered in the background on the library's first use, and starting the platform
   * MBean server is CPU work that never parks. On a virtual thread it held the only carrier (one
   * CPU: the JDK's default then), and the first group's children waited hundreds of milliseconds
   * for it. A JVM of its own, with one carrier and an MBean server whose start spins until a child
   * has run.
   */
  @Test
  void theBeansRegistrationDoesNotHoldTheOnlyCarrier() throws Exception {
    String out =
        Fixtures.runJvm(
            List.of(
                "-Djdk.virtualThreadScheduler.parallelism=1",
                "-Djavax.management.builder.initial="
                    + OneCarrierFirstUseMain.SlowStart.class.getName()),
            OneCarrierFirstUseMain.class);
    assertThat(out).isEqualTo("child ran while the MBean server started");
  }

  @RepeatedTest(2)
  void theJmxBeanServesTheTree() throws Exception {
    var server = java.lang.management.ManagementFactory.getPlatformMBeanServer();
    var name = new javax.management.ObjectName("dev.taskgroup:type=TaskTree");
    TaskGroup group = TaskGroup.named("jmx-group");
    group.run(
        () -> {
          while (!server.isRegistered(name)) { // registered in the background on first use
            Thread.onSpinWait();
            Thread.yield();
          }
          assertThat((String) server.invoke(name, "format", null, null))
              .contains("group 'jmx-group' running #" + Thread.currentThread().threadId());
          assertThat((String) server.invoke(name, "toJson", null, null))
              .startsWith("{\"roots\":[")
              .contains("\"name\":\"jmx-group\"");
          for (String op : new String[] {null, "fromat"}) {
            assertThat(catchThrowable(() -> server.invoke(name, op, null, null)))
                .as("operation %s", op)
                .isInstanceOf(javax.management.ReflectionException.class)
                .hasMessageContaining("no operation '" + op + "': this bean has format and toJson");
          }
        });
  }

  /**
   * JSON exchanged between systems is UTF-8: a name cut in the middle of a character beyond 16 bits
   * (a lone surrogate, which UTF-8 cannot encode) is escaped; a whole one is written as it is.
   */
  @Test
  void toJsonEscapesALoneSurrogateAndKeepsAWholePair() throws Exception {
    String emoji = "\uD83D\uDE00";
    String name = "cut " + emoji.charAt(0) + " end " + emoji.charAt(1) + " whole " + emoji;
    TaskGroup group = TaskGroup.named(name);
    AtomicReference<String> json = new AtomicReference<>();
    group.run(() -> json.set(TaskTree.capture().toJson()));
    assertThat(json.get()).contains("\"name\":\"cut \\ud83d end \\ude00 whole " + emoji + "\"");
    assertThat(java.nio.charset.StandardCharsets.UTF_8.newEncoder().canEncode(json.get())).isTrue();
  }

  @RepeatedTest(2)
  void finishedChildrenAreLeftOut() throws Exception {
    TaskGroup group = TaskGroup.named("fin-group");
    CountDownLatch release = new CountDownLatch(1);
    group.run(
        () -> {
          java.util.List<Task<Integer>> done = new java.util.ArrayList<>();
          for (int i = 0; i < 1_000; i++) {
            done.add(group.fork(() -> 1));
          }
          group.fork("fin-live", () -> release.await(1, TimeUnit.MINUTES));
          for (Task<Integer> t : done) {
            t.get();
          }
          String text = TaskTree.capture().format();
          assertThat(text.lines().filter(l -> l.contains("task ")).toList())
              .hasSize(1)
              .allMatch(l -> l.contains("'fin-live'"));
          release.countDown();
        });
  }

  @Test
  void tenThousandNestedScopesCaptureWithoutRecursion() throws Exception {
    int depth = 10_000;
    String[] out = new String[2];
    long[] tid = new long[1];
    Thread t =
        Thread.ofPlatform()
            .stackSize(64 * 1024 * 1024) // for the test's own nesting; capture must not recurse
            .start(
                () -> {
                  try {
                    nest(
                        depth,
                        () -> {
                          TaskTree tree = TaskTree.capture();
                          out[0] = tree.format();
                          out[1] = tree.toJson();
                          tid[0] = Thread.currentThread().threadId();
                        });
                  } catch (InterruptedException e) {
                    throw new AssertionError(e);
                  }
                });
    t.join();
    assertThat(out[0].lines().filter(l -> l.contains("scope running #" + tid[0])).count())
        .isEqualTo(depth);
    assertThat(out[1]).contains("\"kind\":\"scope\"").endsWith("]}");
  }

  /** Runs {@code body} inside {@code depth} nested cancel scopes. */
  private static void nest(int depth, CancelScope.Block<RuntimeException> body)
      throws InterruptedException {
    if (depth == 0) {
      body.run();
      return;
    }
    CancelScope.create().run(() -> nest(depth - 1, body));
  }

  @Test
  void nothingRunningCapturesNoNodeOfThisThread() {
    assertThat(TaskTree.capture().format())
        .doesNotContain("#" + Thread.currentThread().threadId() + " ");
  }

  /**
   * format() promises one line per node: a line break (or a quote) in a name or a cancel reason is
   * escaped, so it can neither split a node nor forge one.
   */
  @Test
  void formatKeepsEveryNodeOnOneLineWhateverTheNamesHold() throws Exception {
    String name = "line1\nline2\r\u2028└─ task 'forged'\\\u202e";
    TaskGroup group = TaskGroup.named(name);
    AtomicReference<String> running = new AtomicReference<>();
    AtomicReference<String> cancelled = new AtomicReference<>();
    group.run(
        () -> {
          CountDownLatch started = new CountDownLatch(1);
          group.fork(
              "child\nname",
              () -> {
                started.countDown();
                Fixtures.parkUntilInterrupted();
              });
          started.await();
          running.set(TaskTree.capture().format()); // the child is parked: it is listed
          group.cancel("reason\nwith a break)");
          cancelled.set(TaskTree.capture().format()); // the body still runs: the group is listed
        });
    for (String text : List.of(running.get(), cancelled.get())) {
      List<String> lines = text.lines().toList();
      assertThat(lines.stream().filter(l -> l.contains("line1")).toList())
          .as("the group's line in:%n%s", text)
          .singleElement()
          .satisfies(
              l ->
                  assertThat(l)
                      .contains("'line1\\nline2\\r\\u2028└─ task \\'forged\\'\\\\\\u202e'"));
      assertThat(lines)
          .as("no line begins inside a name or reason:%n%s", text)
          .noneMatch(
              l -> l.startsWith("line2") || l.startsWith("with a break") || l.startsWith("name"));
    }
    assertThat(running.get().lines().filter(l -> l.contains("'child\\nname'")).count())
        .as("the child's line in:%n%s", running.get())
        .isEqualTo(1);
    assertThat(cancelled.get()).contains(": reason\\nwith a break\\), ");
  }
}
