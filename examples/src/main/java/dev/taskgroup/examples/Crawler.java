package dev.taskgroup.examples;

import com.sun.net.httpserver.HttpServer;
import dev.taskgroup.TaskGroup;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A bounded crawler: {@code start()} brings up a local web site and hands back its port, then a
 * group with {@code maxConcurrency} crawls it, each page forking its links, until one page holds
 * the target and cancels the rest. Uses only the public API.
 */
public final class Crawler {
  private static final Pattern LINK = Pattern.compile("href=\"(/page/\\d+)\"");
  private static final int PAGES = 2_000;
  private static final int TARGET_PAGE = 1_234;

  private Crawler() {}

  public static void main(String[] args) throws Exception {
    run(8);
  }

  /** Crawls the site with at most {@code maxInFlight} fetches at once; prints what it saw. */
  static void run(int maxInFlight) throws Exception {
    TaskGroup site = TaskGroup.named("site");
    site.run(
        () -> {
          int port = site.start(signal -> serve(signal::started));
          crawl(port, maxInFlight);
          site.cancel("crawl finished"); // stops the server: start()'s child ends
        });
  }

  /** Serves the site until cancelled; reports its port once it is listening. */
  private static void serve(java.util.function.IntConsumer ready) throws InterruptedException {
    HttpServer server;
    try {
      server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
    } catch (IOException e) {
      throw new IllegalStateException("cannot bind the demo site", e);
    }
    server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
    server.createContext(
        "/page/",
        exchange -> {
          int n = Integer.parseInt(exchange.getRequestURI().getPath().substring("/page/".length()));
          StringBuilder html = new StringBuilder("<html><body>page ").append(n);
          if (n == TARGET_PAGE) {
            html.append(" TARGET");
          }
          for (int child : new int[] {2 * n + 1, 2 * n + 2}) {
            if (child < PAGES) {
              html.append(" <a href=\"/page/")
                  .append(child)
                  .append("\">")
                  .append(child)
                  .append("</a>");
            }
          }
          byte[] body = html.append("</body></html>").toString().getBytes(StandardCharsets.UTF_8);
          try {
            Thread.sleep(2); // a little server latency
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          exchange.sendResponseHeaders(200, body.length);
          exchange.getResponseBody().write(body);
          exchange.close();
        });
    server.start();
    try {
      ready.accept(server.getAddress().getPort());
      Thread.sleep(Long.MAX_VALUE); // serves until the group is cancelled
    } finally {
      server.stop(0);
    }
  }

  private static void crawl(int port, int maxInFlight) throws Exception {
    try (HttpClient http = HttpClient.newHttpClient()) {
      crawl(port, maxInFlight, http);
    }
  }

  private static void crawl(int port, int maxInFlight, HttpClient http) throws Exception {
    Set<String> seen = ConcurrentHashMap.newKeySet();
    AtomicReference<String> found = new AtomicReference<>();
    AtomicInteger fetched = new AtomicInteger();
    AtomicInteger inFlight = new AtomicInteger();
    AtomicInteger maxSeen = new AtomicInteger();
    TaskGroup crawl = TaskGroup.builder().name("crawl").maxConcurrency(maxInFlight).build();
    long t0 = System.nanoTime();
    crawl.run(
        () -> {
          class Visit {
            void page(String path) throws Exception {
              maxSeen.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
              String html;
              try {
                HttpRequest request =
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build();
                html = http.send(request, HttpResponse.BodyHandlers.ofString()).body();
              } finally {
                inFlight.decrementAndGet();
              }
              fetched.incrementAndGet();
              if (html.contains("TARGET")) {
                found.set(path);
                crawl.cancel("found the target at " + path);
                return;
              }
              Matcher m = LINK.matcher(html);
              while (m.find()) {
                String link = m.group(1);
                if (seen.add(link)) {
                  crawl.fork(
                      () -> {
                        page(link);
                        return null;
                      });
                }
              }
            }
          }
          seen.add("/page/0");
          crawl.fork(
              () -> {
                new Visit().page("/page/0");
                return null;
              });
        });
    System.out.printf(
        "  found %s after fetching %d of %d pages in %.1f ms; at most %d fetches in flight"
            + " (maxConcurrency %d)%n",
        found.get(),
        fetched.get(),
        PAGES,
        (System.nanoTime() - t0) / 1e6,
        maxSeen.get(),
        maxInFlight);
    System.out.printf(
        "  crawl: cancelCalled=%s cancelCaught=%s reason=\"%s\"%n",
        crawl.cancelCalled(), crawl.cancelCaught(), crawl.cancelScope().cancelReason().orElse(""));
  }
}
