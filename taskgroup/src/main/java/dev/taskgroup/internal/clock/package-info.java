/**
 * The library's one clock: every deadline and every library sleep reads {@link
 * dev.taskgroup.internal.clock.LibraryClock}. With no test clock installed it is {@code
 * System.nanoTime()} and {@code Instant.now()}. Exported only to the test kit ({@code
 * dev.taskgroup.test}), which installs a virtual {@link dev.taskgroup.internal.clock.TimeSource}.
 */
package dev.taskgroup.internal.clock;
