package dev.taskgroup;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The blocking operations of the cancellation matrix, each set up against a real component
 * (loopback sockets, the JDK HTTP server and client, a named pipe, a child process, H2), with the
 * call as user code writes it, its remedy, and a way for the test to end it when a cancel does not.
 */
final class MatrixRigs {
  private MatrixRigs() {}

  /** One blocking operation, set up fresh for one run. */
  abstract static class Rig implements AutoCloseable {
    /** The blocking call, as user code writes it; with the remedy when asked. */
    abstract void call(boolean remedy) throws Exception;

    /** Waits until {@code child} is in the call (default: parked or blocked, at most 200 ms). */
    void awaitBlocked(Thread child) throws Exception {
      long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(200);
      while (System.nanoTime() - until < 0L) {
        Thread.State st = child.getState();
        if (st == Thread.State.WAITING
            || st == Thread.State.TIMED_WAITING
            || st == Thread.State.BLOCKED) {
          return;
        }
        Thread.sleep(1); // polling a thread's state: a native read shows no state to wait for
      }
    }

    /** How long the test waits for the cancel to end the call before it ends it itself. */
    Duration bound() {
      return Duration.ofSeconds(1);
    }

    /**
     * Whether the outcome varies from run to run: then the time is banded no finer than {@link
     * #bound()}, and what {@code run} reports is shown as varying.
     */
    boolean varies(boolean remedy) {
      return false;
    }

    /**
     * When the outcome {@link #varies}, the failure {@code run} reports in the runs that fail, if
     * it is not what user code saw ({@code null}: what user code saw).
     */
    String variedFailure() {
      return null;
    }

    /** Ends the call from outside, when the cancel did not. */
    abstract void forceEnd() throws Exception;

    /** What the call left behind, looked at right after the group's run returned. */
    String leftBehind() throws Exception {
      return "nothing";
    }

    @Override
    public void close() throws Exception {}
  }

  /** A factory of rigs (each run gets a fresh one). */
  interface Maker {
    Rig make(Path dir) throws Exception;
  }

  /** A loopback server with one accepted, silent connection. */
  static final class SocketRead extends Rig {
    final ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    final Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
    final Socket peer = server.accept();

    SocketRead() throws IOException {}

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.closeOnCancel(client) : null) {
        client.getInputStream().read();
      }
    }

    @Override
    void forceEnd() throws IOException {
      client.close();
    }

    @Override
    String leftBehind() {
      return client.isClosed() ? "socket closed" : "socket open";
    }

    @Override
    public void close() throws IOException {
      client.close();
      peer.close();
      server.close();
    }
  }

  /** A loopback server nobody connects to. */
  static final class SocketAccept extends Rig {
    final ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());

    SocketAccept() throws IOException {}

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.closeOnCancel(server) : null) {
        server.accept().close();
      }
    }

    @Override
    void forceEnd() throws IOException {
      server.close();
    }

    @Override
    String leftBehind() {
      return server.isClosed() ? "server socket closed" : "server socket open";
    }

    @Override
    public void close() throws IOException {
      server.close();
    }
  }

  /** A loopback server whose accept queue is full: a new connect waits for a place. */
  static final class SocketConnect extends Rig {
    final ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    final List<Socket> queued = new ArrayList<>();
    final Socket socket = new Socket();

    SocketConnect() throws IOException {
      while (true) {
        Socket s = new Socket();
        try {
          s.connect(server.getLocalSocketAddress(), 200);
          queued.add(s);
        } catch (SocketTimeoutException full) {
          s.close();
          return;
        }
      }
    }

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.closeOnCancel(socket) : null) {
        socket.connect(server.getLocalSocketAddress());
      }
    }

    @Override
    void forceEnd() throws IOException {
      socket.close();
    }

    @Override
    String leftBehind() {
      return socket.isClosed() ? "socket closed" : "socket open";
    }

    @Override
    public void close() throws IOException {
      socket.close();
      for (Socket s : queued) {
        s.close();
      }
      server.close();
    }
  }

  /** The JDK HttpClient against a JDK HttpServer whose handler blocks. */
  static final class Http extends Rig {
    final AwaitTest.BlockingServer server = new AwaitTest.BlockingServer();
    final HttpClient client = HttpClient.newHttpClient();
    CompletableFuture<HttpResponse<Void>> pending;

    Http() throws IOException {}

    @Override
    void call(boolean remedy) throws Exception {
      HttpRequest request = HttpRequest.newBuilder(server.uri()).build();
      if (remedy) {
        pending = client.sendAsync(request, HttpResponse.BodyHandlers.discarding());
        CancelScope.await(pending);
      } else {
        client.send(request, HttpResponse.BodyHandlers.discarding());
      }
    }

    @Override
    void awaitBlocked(Thread child) throws Exception {
      server.entered.await();
    }

    @Override
    void forceEnd() {
      server.release.countDown();
    }

    @Override
    String leftBehind() {
      return pending == null || !pending.isCompletedExceptionally()
          ? "nothing"
          : "request cancelled";
    }

    @Override
    public void close() {
      server.close();
      client.close();
    }
  }

  /** A named pipe (mkfifo) with a writer that never writes. */
  abstract static class Pipe extends Rig {
    final Path fifo;
    final FileChannel holder; // both ends: opening the reader does not block, reads do

    Pipe(Path dir) throws Exception {
      fifo = dir.resolve("pipe");
      Process mk = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
      if (mk.waitFor() != 0) {
        throw new IOException("mkfifo failed");
      }
      holder = FileChannel.open(fifo, StandardOpenOption.READ, StandardOpenOption.WRITE);
    }

    @Override
    void forceEnd() throws IOException {
      holder.write(ByteBuffer.wrap(new byte[] {1}));
    }

    @Override
    public void close() throws IOException {
      holder.close();
    }
  }

  /** FileChannel.read on a named pipe. */
  static final class PipeChannel extends Pipe {
    FileChannel channel;

    PipeChannel(Path dir) throws Exception {
      super(dir);
      channel = FileChannel.open(fifo, StandardOpenOption.READ);
    }

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.closeOnCancel(channel) : null) {
        channel.read(ByteBuffer.allocate(1));
      }
    }

    @Override
    String leftBehind() {
      return channel.isOpen() ? "channel open" : "channel closed";
    }

    @Override
    public void close() throws IOException {
      channel.close();
      super.close();
    }
  }

  /** FileInputStream.read on a named pipe. */
  static final class PipeStream extends Pipe {
    final FileInputStream in;

    PipeStream(Path dir) throws Exception {
      super(dir);
      in = new FileInputStream(fifo.toFile());
    }

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.closeOnCancel(in) : null) {
        in.read();
      }
    }

    @Override
    public void close() throws IOException {
      in.close();
      super.close();
    }
  }

  /** A real child process, {@code sleep 30}. */
  abstract static class Child extends Rig {
    final Process process = new ProcessBuilder("sleep", "30").start();

    Child() throws IOException {}

    @Override
    void forceEnd() {
      process.destroyForcibly();
    }

    @Override
    String leftBehind() throws InterruptedException {
      // destroy() sends a signal: give the process a moment to go
      boolean ended = process.waitFor(500, TimeUnit.MILLISECONDS);
      return ended ? "process ended" : "process still running";
    }

    @Override
    public void close() throws InterruptedException {
      process.destroyForcibly().waitFor();
    }
  }

  /** Process.waitFor; the remedy destroys the process. */
  static final class WaitFor extends Child {
    WaitFor() throws IOException {}

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.onCancel(process::destroy) : null) {
        process.waitFor();
        // With the hook, destroy() races the interrupt: when the process ends first, waitFor
        // returns; the next checkpoint reports the cancellation either way.
        CancelScope.checkpoint();
      }
    }
  }

  /** A read from the process's output; the remedy destroys the process. */
  static final class ProcessRead extends Child {
    ProcessRead() throws IOException {}

    @Override
    void call(boolean remedy) throws Exception {
      try (var hook = remedy ? CancelScope.onCancel(process::destroy) : null;
          InputStream out = process.getInputStream()) {
        out.read();
      }
    }
  }
}
