package dev.taskgroup.test;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.parallel.ResourceLock;
import org.junit.jupiter.api.parallel.Resources;

/**
 * Runs each test of the annotated class (or the annotated test method) on its own {@link
 * VirtualClock}, installed before the test's {@code @BeforeEach} methods and closed after its
 * {@code @AfterEach} methods; a parameter of type {@code VirtualClock} receives it.
 *
 * {@snippet :
 * @VirtualTime
 * class RetryTest {
 *   @Test
 *   void givesUpAfterThirtySeconds(VirtualClock clock) throws Exception {
 *     clock.autoAdvance();
 *     assertThat(CancelScope.moveOnAfter(Duration.ofSeconds(30), () -> retryForever())).isNull();
 *   }
 * }
 * }
 *
 * <p>The library's clock is one per process, so these tests never run at the same time as any other
 * test: the annotation takes JUnit's global resource lock ({@link Resources#GLOBAL}, as
 * {@code @Isolated} does) in read-write mode. With parallel execution enabled, other tests keep
 * running in parallel with each other, and wait while a virtual-time test runs. (Registering {@link
 * VirtualTimeExtension} with {@code @ExtendWith} alone does not take the lock: such tests must not
 * run in parallel.)
 */
@Target({ElementType.TYPE, ElementType.METHOD})
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Inherited
@ExtendWith(VirtualTimeExtension.class)
@ResourceLock(Resources.GLOBAL)
public @interface VirtualTime {}
