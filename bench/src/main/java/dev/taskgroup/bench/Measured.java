package dev.taskgroup.bench;

import java.util.List;

/**
 * One measured number with its error bar: for JMH, the score and JMH's score error (the half-width
 * of its 99.9% confidence interval); for a harness, the mean and the sample standard deviation of
 * its rounds.
 *
 * @param score the value
 * @param error the error bar (0 when there was a single sample)
 * @param unit the unit
 * @param samples how many samples it is made of
 */
record Measured(double score, double error, String unit, long samples) {

  /** Mean and sample standard deviation. */
  static Measured ofSamples(List<Double> values, String unit) {
    double sum = 0;
    for (double v : values) {
      sum += v;
    }
    double mean = sum / values.size();
    double sq = 0;
    for (double v : values) {
      sq += (v - mean) * (v - mean);
    }
    double sd = values.size() > 1 ? Math.sqrt(sq / (values.size() - 1)) : 0.0;
    return new Measured(mean, sd, unit, values.size());
  }

  /**
   * This divided by {@code base}, with the error propagated to first order: {@code r *
   * sqrt((e1/v1)^2 + (e2/v2)^2)}.
   */
  Measured over(Measured base) {
    double r = score / base.score;
    double rel1 = error / score;
    double rel2 = base.error / base.score;
    return new Measured(
        r, r * Math.sqrt(rel1 * rel1 + rel2 * rel2), "x", Math.min(samples, base.samples));
  }
}
