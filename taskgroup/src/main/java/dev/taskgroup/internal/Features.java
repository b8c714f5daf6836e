package dev.taskgroup.internal;

/**
 * The control row of the benchmark's "what is not used costs nothing" comparison.
 *
 * <p>With the system property {@code dev.taskgroup.internal.withoutFeatures=true} set before the
 * library is first used, the hooks of the optional features (context propagators, JFR events, the
 * test clock) are taken out of the fork, run and scope-entry paths. {@link #ON} is a static final,
 * so the JIT folds every {@code if (Features.ON ...)} away in both settings: with the property, the
 * code that runs is the code a build without those features would run; without it (always, in an
 * application) the check costs nothing. The benchmark runs fork + join both ways in one run and
 * compares them.
 *
 * <p>Not for applications: with the property set, context propagators are not applied, no JFR event
 * is recorded and the test clock is not seen.
 */
final class Features {
  private Features() {}

  /** False only in the benchmark's control row; see the class comment. */
  static final boolean ON = !Boolean.getBoolean("dev.taskgroup.internal.withoutFeatures");
}
