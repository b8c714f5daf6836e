package dev.taskgroup.examples.guide;

import dev.taskgroup.FailurePolicy;
import dev.taskgroup.Task;
import dev.taskgroup.TaskGroup;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;

/** The guide's samples on start, supervisors, bounded concurrency and invokeAll / invokeAny. */
public final class Patterns {
  private Patterns() {}

  // region start
  static int echoOnce(String message) throws Exception {
    var group = TaskGroup.named("echo");
    return group.call(() -> {
      int port = group.start(signal -> {
        try (var server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
          signal.started(server.getLocalPort());    // start() returns this value
          while (true) {
            try (Socket client = server.accept()) {
              client.getInputStream().transferTo(client.getOutputStream());
            }
          }
        }
      });
      int echoed = roundTrip(port, message);        // the server is ready: talk to it
      group.cancel("done");                         // then stop it
      return echoed;
    });
  }
  // endregion

  private static int roundTrip(int port, String message) throws IOException {
    try (var socket = new Socket(InetAddress.getLoopbackAddress(), port)) {
      OutputStream out = socket.getOutputStream();
      out.write(message.getBytes());
      socket.shutdownOutput();
      InputStream in = socket.getInputStream();
      return in.readAllBytes().length;
    }
  }

  // region supervisor
  static List<String> processAll(List<String> jobs) throws InterruptedException {
    Queue<String> failed = new ConcurrentLinkedQueue<>();
    var workers = TaskGroup.builder()
        .name("workers")
        .failurePolicy(FailurePolicy.COLLECT)           // a failure cancels nobody
        .onFailure(f -> failed.add(f.getMessage()))     // streamed, not kept
        .build();
    workers.run(() -> {
      for (String job : jobs) {
        workers.fork(() -> Services.process(job));
      }
    });
    return List.copyOf(failed);
  }
  // endregion

  // region bounded
  static int downloadAll(List<String> urls) throws InterruptedException {
    var downloads = TaskGroup.builder().name("downloads").maxConcurrency(4).build();
    return downloads.call(() -> {
      int bytes = 0;
      List<Task<Integer>> tasks = new ArrayList<>();
      for (String url : urls) {
        tasks.add(downloads.fork(() -> Services.download(url)));   // waits for a free place
      }
      for (var task : tasks) {
        bytes += task.get();
      }
      return bytes;
    });
  }
  // endregion

  // region invoke
  static String fastestThenAll() throws InterruptedException {
    List<Callable<String>> mirrors = List.of(
        () -> Services.ask("mirror-a", 50), () -> Services.ask("mirror-b", 5));
    String fastest = TaskGroup.invokeAny(mirrors);     // the others are cancelled
    List<String> all = TaskGroup.invokeAll(mirrors);   // every result, in order
    return fastest + " / " + all;
  }
  // endregion
}
