package com.example.consumer;

import dev.taskgroup.CancelScope;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.time.Duration;

/** Uses the installed taskgroup jar as a user would; exits non-zero if it misbehaves. */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    var group = TaskGroup.named("consumer");
    String both = group.call(() -> {
      Task<String> a = group.fork(() -> "a");
      Task<String> b = group.fork(() -> "b");
      group.fork(() -> Thread.sleep(60_000));   // cancelled below
      String result = a.get() + b.get();
      group.cancel("have both");
      return result;
    });
    String late = CancelScope.moveOnAfter(Duration.ofMillis(20), () -> {
      Thread.sleep(60_000);
      return "too late";
    });
    if (!"ab".equals(both) || !group.cancelCaught() || late != null) {
      System.err.println(
          "consumer check FAILED: " + both + " " + group.cancelCaught() + " " + late);
      System.exit(1);
    }
    System.out.println("consumer check: taskgroup "
        + TaskGroup.class.getModule().getDescriptor().toNameAndVersion()
        + " works from another project on Java " + Runtime.version().feature());
  }
}
