package dev.taskgroup.examples.context;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.OutputStreamAppender;
import dev.taskgroup.TaskGroup;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * The MDC recipe against the real logback: log lines, formatted by a logback appender on the thread
 * that logs, carry the MDC that thread had.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class MdcRecipeTest {
  private static final Logger LOG = (Logger) LoggerFactory.getLogger("recipe.mdc");
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final OutputStreamAppender<ILoggingEvent> appender = new OutputStreamAppender<>();

  @BeforeEach
  void capture() {
    LoggerContext context = LOG.getLoggerContext();
    PatternLayoutEncoder encoder = new PatternLayoutEncoder();
    encoder.setContext(context);
    encoder.setPattern("%msg requestId=%X{requestId} user=%X{user}%n");
    encoder.start();
    appender.setContext(context);
    appender.setEncoder(encoder);
    appender.setOutputStream(out);
    appender.start();
    LOG.addAppender(appender);
  }

  @AfterEach
  void release() {
    LOG.detachAppender(appender);
    appender.stop();
    MDC.clear();
  }

  private static TaskGroup withMdc() {
    return TaskGroup.builder().contextPropagator(new MdcPropagator()).build();
  }

  /** What was logged; read after run returned, which happens-after every child's logging. */
  private String log() {
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void withoutThePropagatorAChildLogsWithoutTheRequestId() throws Exception {
    MDC.put("requestId", "r-42");
    TaskGroup group = TaskGroup.create();
    group.run(() -> group.fork(() -> LOG.info("plain child")));
    assertThat(log()).isEqualTo("plain child requestId= user=\n");
  }

  @Test
  void aChildsLogLineCarriesTheOwnersRequestId() throws Exception {
    MDC.put("requestId", "r-42");
    TaskGroup group = withMdc();
    group.run(() -> group.fork(() -> LOG.info("child working")));
    assertThat(log()).isEqualTo("child working requestId=r-42 user=\n");
  }

  @RepeatedTest(5)
  void aChildsMdcChangesDoNotLeakToTheOwnerOrSiblings() throws Exception {
    MDC.put("requestId", "r-42");
    TaskGroup group = withMdc();
    group.run(
        () -> {
          group
              .fork(
                  () -> {
                    MDC.put("user", "alice");
                    MDC.put("requestId", "changed-by-child");
                    LOG.info("first child");
                  })
              .get();
          group.fork(() -> LOG.info("sibling")).get();
          LOG.info("owner inside");
        });
    assertThat(log())
        .isEqualTo(
            """
            first child requestId=changed-by-child user=alice
            sibling requestId=r-42 user=
            owner inside requestId=r-42 user=
            """);
    assertThat(MDC.getCopyOfContextMap()).containsExactlyEntriesOf(Map.of("requestId", "r-42"));
  }
}
