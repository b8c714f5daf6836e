package dev.taskgroup.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How a curve grows, from ordinary least squares on its points (size x, total time y).
 *
 * @param perUnit the slope of the straight-line fit {@code y = a + b x}: the cost each further
 *     child (or scope) adds, in the curve's total unit per unit of size
 * @param fixed the intercept {@code a} of that fit
 * @param exponent the slope of the fit {@code log y = c + k log x} over all points: 1 is linear
 * @param tailExponent the same over the three largest sizes, where a fixed cost no longer hides a
 *     super-linear term
 */
record Fit(double perUnit, double fixed, double exponent, double tailExponent) {
  /** Above this log-log slope a curve is called super-linear (MISS). */
  static final double SUPER_LINEAR = 1.15;

  /** Fits the points (size to total); needs at least two. */
  static Fit of(Map<Long, Measured> points) {
    List<double[]> xy = new ArrayList<>();
    points.forEach((x, m) -> xy.add(new double[] {x, m.score()}));
    if (xy.size() < 2) {
      return new Fit(Double.NaN, Double.NaN, Double.NaN, Double.NaN);
    }
    double[] line = leastSquares(xy, false);
    double all = leastSquares(xy, true)[1];
    double tail = leastSquares(xy.subList(Math.max(0, xy.size() - 3), xy.size()), true)[1];
    return new Fit(line[1], line[0], all, tail);
  }

  /** Whether the curve grows faster than linear: either log-log slope above 1.15. */
  boolean superLinear() {
    return exponent > SUPER_LINEAR || tailExponent > SUPER_LINEAR;
  }

  /** {intercept, slope} of y on x, or of log y on log x. */
  static double[] leastSquares(List<double[]> points, boolean logLog) {
    double n = points.size();
    double sx = 0;
    double sy = 0;
    double sxx = 0;
    double sxy = 0;
    for (double[] p : points) {
      double x = logLog ? Math.log(p[0]) : p[0];
      double y = logLog ? Math.log(p[1]) : p[1];
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    return new double[] {(sy - slope * sx) / n, slope};
  }
}
