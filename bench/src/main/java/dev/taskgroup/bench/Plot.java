package dev.taskgroup.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.geom.Rectangle2D;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.text.NumberFormat;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.NumberTick;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.axis.TickType;
import org.jfree.chart.axis.ValueAxis;
import org.jfree.chart.axis.ValueTick;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * Draws one curve at one carrier count as a PNG with JFreeChart (headless): one series per
 * implementation, log size axis, and a log value axis when the values span more than a decade.
 */
final class Plot {
  /** Fixed colours per implementation, so that every plot reads the same. */
  private static final Map<String, Color> COLOURS =
      Map.of(
          "raw", new Color(0x55, 0x55, 0x55),
          "taskgroup", new Color(0xd6, 0x27, 0x28),
          "sts", new Color(0x1f, 0x77, 0xb4),
          "executor", new Color(0x2c, 0xa0, 0x2c));

  private Plot() {}

  /** One labelled tick per power of ten, nine minor ticks between, plain labels. */
  private static void decades(LogAxis axis) {
    axis.setTickUnit(new NumberTickUnit(1.0), false, true);
    axis.setMinorTickMarksVisible(true);
    axis.setMinorTickCount(9);
    axis.setNumberFormatOverride(plain());
  }

  /**
   * A vertical log axis labelled at 1, 2 and 5 times each power of ten, so that a range of one or
   * two decades still shows several values.
   */
  private static final class OneTwoFiveAxis extends LogAxis {
    private static final long serialVersionUID = 1L;

    OneTwoFiveAxis(String label) {
      super(label);
    }

    @Override
    protected List<ValueTick> refreshTicksVertical(
        Graphics2D g2, Rectangle2D dataArea, RectangleEdge edge) {
      List<ValueTick> ticks = new ArrayList<>();
      double lo = getLowerBound();
      double hi = getUpperBound();
      NumberFormat format = plain();
      TextAnchor anchor =
          edge == RectangleEdge.LEFT ? TextAnchor.CENTER_RIGHT : TextAnchor.CENTER_LEFT;
      for (int e = (int) Math.floor(Math.log10(lo)); e <= (int) Math.ceil(Math.log10(hi)); e++) {
        for (int m = 1; m <= 9; m++) {
          double v = m * Math.pow(10, e);
          if (v < lo || v > hi) {
            continue;
          }
          boolean major = m == 1 || m == 2 || m == 5;
          ticks.add(
              new NumberTick(
                  major ? TickType.MAJOR : TickType.MINOR,
                  v,
                  major ? format.format(v) : "",
                  anchor,
                  TextAnchor.CENTER,
                  0.0));
        }
      }
      return ticks;
    }
  }

  /** Tick labels as plain numbers (1, 10, 1,000, 0.01) rather than powers of ten. */
  private static NumberFormat plain() {
    return new DecimalFormat("#,##0.###", DecimalFormatSymbols.getInstance(Locale.ROOT));
  }

  /** Writes {@code file} (800 x 500 PNG) for {@code curve} at {@code carriers}. */
  static void draw(Curve curve, int carriers, Path file) throws IOException {
    System.setProperty("java.awt.headless", "true");
    Map<String, TreeMap<Long, Measured>> series = curve.points().getOrDefault(carriers, Map.of());
    XYSeriesCollection data = new XYSeriesCollection();
    double min = Double.POSITIVE_INFINITY;
    double max = 0;
    for (String impl : Compare.ORDER) {
      TreeMap<Long, Measured> points = series.get(impl);
      if (points == null) {
        continue;
      }
      XYSeries s = new XYSeries(impl);
      for (Map.Entry<Long, Measured> p : points.entrySet()) {
        double y = curve.shown(p.getValue().score(), p.getKey());
        if (y > 0) {
          s.add(p.getKey().doubleValue(), y);
          min = Math.min(min, y);
          max = Math.max(max, y);
        }
      }
      data.addSeries(s);
    }
    LogAxis x = new LogAxis(curve.xName() + " (log scale)");
    x.setBase(10);
    decades(x);
    x.setSmallestValue(0.5);
    ValueAxis y;
    if (max > 10 * min) {
      LogAxis log = new OneTwoFiveAxis(curve.unit() + " (log scale)");
      log.setBase(10);
      decades(log);
      log.setSmallestValue(min / 2);
      y = log;
    } else {
      NumberAxis lin = new NumberAxis(curve.unit());
      lin.setAutoRangeIncludesZero(true);
      y = lin;
    }
    XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
    List<?> keys = data.getSeries();
    for (int i = 0; i < keys.size(); i++) {
      String impl = (String) data.getSeriesKey(i);
      renderer.setSeriesPaint(i, COLOURS.getOrDefault(impl, Color.MAGENTA));
      renderer.setSeriesStroke(i, new BasicStroke(impl.equals("taskgroup") ? 2.5f : 1.5f));
    }
    XYPlot plot = new XYPlot(data, x, y, renderer);
    plot.setBackgroundPaint(Color.WHITE);
    plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
    plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    String title = curve.title() + ", " + carriers + (carriers == 1 ? " carrier" : " carriers");
    JFreeChart chart = new JFreeChart(title, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
    chart.setBackgroundPaint(Color.WHITE);
    Files.createDirectories(file.toAbsolutePath().getParent());
    ChartUtils.saveChartAsPNG(file.toFile(), chart, 800, 500);
  }
}
