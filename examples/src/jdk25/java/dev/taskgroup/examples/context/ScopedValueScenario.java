package dev.taskgroup.examples.context;

import dev.taskgroup.TaskGroup;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * What children see of the owner's scoped values, with and without {@link ScopedValuePropagator}
 * (JDK 25+). Its test (compiled for Java 21, which cannot name {@code ScopedValue}) runs it
 * reflectively and checks the lines it returns, in order.
 */
public final class ScopedValueScenario implements Callable<List<String>> {
  static final ScopedValue<String> REQUEST_ID = ScopedValue.newInstance();
  static final ScopedValue<String> NOT_LISTED = ScopedValue.newInstance();

  @Override
  public List<String> call() throws Exception {
    Queue<String> seen = new ConcurrentLinkedQueue<>();
    ScopedValue.where(REQUEST_ID, "r-7")
        .where(NOT_LISTED, "secret")
        .call(
            () -> {
              TaskGroup plain = TaskGroup.create();
              plain.run(() -> plain.fork(() -> seen.add("plain child: " + describe())).get());
              TaskGroup group =
                  TaskGroup.builder()
                      .contextPropagator(new ScopedValuePropagator(REQUEST_ID))
                      .build();
              group.run(
                  () ->
                      group
                          .fork(
                              () -> {
                                seen.add("child: " + describe());
                                group.fork(() -> seen.add("grandchild: " + describe())).get();
                                return null;
                              })
                          .get());
              seen.add("owner after: " + describe());
              return null;
            });
    return List.copyOf(seen);
  }

  private static String describe() {
    return "REQUEST_ID="
        + REQUEST_ID.orElse("unbound")
        + " NOT_LISTED="
        + NOT_LISTED.orElse("unbound");
  }
}
