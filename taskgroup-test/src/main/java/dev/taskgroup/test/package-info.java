/**
 * The taskgroup test kit: tests of code with deadlines that run in milliseconds.
 *
 * <p>{@link dev.taskgroup.test.VirtualClock} puts the library's deadlines and {@code
 * CancelScope.sleep} on a virtual time that moves only when the test says so ({@code advance}) or
 * when every thread in the library's scopes is blocked ({@code autoAdvance}). {@link
 * dev.taskgroup.test.VirtualTime} installs one per JUnit Jupiter test and injects it as a
 * parameter.
 *
 * <p>Reading order for maintainers: {@code VirtualClock} (moving the time, auto-advance), then
 * {@code VirtualTimeline} (the virtual now and its sleepers, which the library reads through its
 * clock seam), then the extension.
 */
package dev.taskgroup.test;
