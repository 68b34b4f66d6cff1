package dev.tokenlease.bench;

import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.HdrHistogram.Histogram;

/**
 * Open-loop load at a fixed rate: request i is due at {@code start + i / rate} whether or not earlier
 * ones have been answered, and its latency is measured from that due time, not from when a
 * connection became free. A slow server therefore shows up as latency instead of silently lowering
 * the offered load (coordinated omission). The load is spread over one sender per core, each on its
 * own event loop with its own keep-alive connections, opened before the clock starts.
 *
 * <p>It speaks HTTP/1.1 over plain sockets (a request written as bytes, an answer read up to its
 * {@code Content-Length}), as wrk does: on a machine it shares with the server, a full HTTP client
 * costs more CPU per request than the server under test, and the generator's own work would then be
 * what the latencies measure.
 */
final class OpenLoopLoad {
  /** One request; {@code authorization} is an Authorization header value, or null. */
  record Call(HttpMethod method, String path, Buffer body, String authorization) {
    Call(HttpMethod method, String path, Buffer body) {
      this(method, path, body, null);
    }

    /** The request as HTTP/1.1 bytes on a keep-alive connection. */
    Buffer encode() {
      StringBuilder head = new StringBuilder(160).append(method.name()).append(' ').append(path)
          .append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      if (authorization != null) {
        head.append("Authorization: ").append(authorization).append("\r\n");
      }
      if (body != null) {
        head.append("Content-Type: application/json\r\nContent-Length: ").append(body.length()).append("\r\n");
      }
      head.append("\r\n");
      Buffer bytes = Buffer.buffer(head.toString().getBytes(StandardCharsets.US_ASCII));
      return body == null ? bytes : bytes.appendBuffer(body);
    }
  }

  /**
   * Latency in microseconds, what went wrong, and the rates offered and achieved. When the achieved
   * rate falls well short of the offered one, the generator (sharing the machine) was the limit.
   */
  record Result(Histogram latencyMicros, long sent, long errors, double offeredRate, double achievedRate) {
    boolean generatorBound() {
      return achievedRate < 0.95 * offeredRate;
    }
  }

  private OpenLoopLoad() {}

  static Result run(int port, double rate, Duration duration, int connections, Supplier<Call> calls)
      throws Exception {
    Vertx vertx = Vertx.vertx();
    int senders = Math.max(1, Runtime.getRuntime().availableProcessors());
    List<Sender> ready = new CopyOnWriteArrayList<>();
    List<Sender> finished = new CopyOnWriteArrayList<>();
    try {
      vertx.deployVerticle(() -> new Sender(port, rate / senders, duration.toNanos(),
              Math.max(1, connections / senders), calls, ready, finished),
          new DeploymentOptions().setInstances(senders)).toCompletionStage().toCompletableFuture()
          .get(60, TimeUnit.SECONDS);
      long start = System.nanoTime() + 50_000_000L;
      for (Sender sender : ready) {
        sender.begin(start);
      }
      long deadline = System.nanoTime() + duration.toNanos() + TimeUnit.SECONDS.toNanos(40);
      while (finished.size() < senders && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      Histogram all = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
      long sent = 0;
      long errors = 0;
      long completed = 0;
      for (Sender sender : finished) {
        all.add(sender.histogram);
        sent += sender.sent;
        errors += sender.errors + (sender.sent - sender.completed);
        completed += sender.completed;
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      return new Result(all, sent, errors, rate, completed / Math.max(seconds, duration.toSeconds()));
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  /**
   * Sends its share of the load from one event loop and records each answer's latency. A request due
   * while every connection is busy waits for the next free one; its latency still counts from when
   * it was due.
   */
  private static final class Sender extends VerticleBase {
    private final int port;
    private final long interval;
    private final long durationNanos;
    private final int connections;
    private final Supplier<Call> calls;
    private final List<Sender> ready;
    private final List<Sender> finished;
    private final Histogram histogram = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
    private final ArrayDeque<Connection> idle = new ArrayDeque<>();
    private final ArrayDeque<Long> backlog = new ArrayDeque<>();
    private final List<Connection> all = new ArrayList<>();
    private long start;
    private long end;
    private long next;
    private long sent;
    private long completed;
    private long errors;

    Sender(int port, double rate, long durationNanos, int connections, Supplier<Call> calls, List<Sender> ready,
        List<Sender> finished) {
      this.port = port;
      this.interval = (long) (1_000_000_000L / rate);
      this.durationNanos = durationNanos;
      this.connections = connections;
      this.calls = calls;
      this.ready = ready;
      this.finished = finished;
    }

    /** Opens the sender's connections and sends one request on each, then reports ready. */
    @Override
    public Future<?> start() {
      NetClient client = vertx.createNetClient(new NetClientOptions().setTcpNoDelay(true));
      List<Future<Void>> opened = new ArrayList<>();
      for (int i = 0; i < connections; i++) {
        opened.add(client.connect(port, "127.0.0.1").compose(socket -> {
          Connection connection = new Connection(socket);
          all.add(connection);
          return connection.exchange(calls.get().encode());
        }));
      }
      return Future.join(opened).onComplete(done -> ready.add(this));
    }

    /** Starts sending on the sender's event loop; request i is due at {@code start + i * interval}. */
    void begin(long startNanos) {
      context.runOnContext(go -> {
        start = startNanos;
        end = startNanos + durationNanos;
        next = start;
        vertx.setPeriodic(1, timer -> {
          long now = System.nanoTime();
          while (next <= now && next < end) {
            send(next);
            next += interval;
          }
          if (next >= end) {
            vertx.cancelTimer(timer);
            awaitAnswers(System.nanoTime() + TimeUnit.SECONDS.toNanos(30));
          }
        });
      });
    }

    private void send(long due) {
      sent++;
      Connection connection = idle.poll();
      if (connection == null) {
        backlog.add(due);
      } else {
        connection.send(due);
      }
    }

    /** An answer came (or the connection failed): record it, and give the connection the next request. */
    private void answered(Connection connection, long due, boolean ok) {
      long micros = Math.max(1, (System.nanoTime() - due) / 1_000);
      histogram.recordValue(Math.min(micros, histogram.getHighestTrackableValue()));
      if (!ok) {
        errors++;
      }
      completed++;
      if (connection.broken) {
        return;
      }
      Long waiting = backlog.poll();
      if (waiting != null) {
        connection.send(waiting);
      } else {
        idle.add(connection);
      }
    }

    private void awaitAnswers(long deadline) {
      if (completed >= sent || System.nanoTime() > deadline) {
        all.forEach(c -> c.socket.close());
        finished.add(this);
        return;
      }
      vertx.setTimer(10, id -> awaitAnswers(deadline));
    }

    /**
     * One keep-alive connection with at most one request outstanding; parses the answer's status
     * line, headers and a {@code Content-Length} body.
     */
    private final class Connection {
      private final NetSocket socket;
      private Buffer pending = Buffer.buffer();
      private long due;
      private boolean busy;
      private io.vertx.core.Promise<Void> warmup;
      private boolean broken;

      Connection(NetSocket socket) {
        this.socket = socket;
        socket.handler(this::received);
        socket.exceptionHandler(failure -> broke());
        socket.closeHandler(closed -> broke());
      }

      /** The warm-up exchange: one request, answered before the clock starts. */
      Future<Void> exchange(Buffer request) {
        warmup = io.vertx.core.Promise.promise();
        socket.write(request);
        return warmup.future();
      }

      void send(long dueNanos) {
        due = dueNanos;
        busy = true;
        socket.write(calls.get().encode());
      }

      private void received(Buffer bytes) {
        pending = pending.length() == 0 ? bytes : pending.appendBuffer(bytes);
        int headEnd = indexOf(pending, "\r\n\r\n");
        if (headEnd < 0) {
          return;
        }
        String head = pending.getString(0, headEnd, "US-ASCII");
        int length = contentLength(head);
        int total = headEnd + 4 + Math.max(0, length);
        if (pending.length() < total) {
          return;
        }
        boolean ok = length >= 0 && head.length() > 12 && head.charAt(9) < '4';
        pending = pending.length() == total ? Buffer.buffer() : pending.getBuffer(total, pending.length());
        finish(ok);
      }

      private void finish(boolean ok) {
        if (warmup != null) {
          io.vertx.core.Promise<Void> done = warmup;
          warmup = null;
          idle.add(this);
          done.tryComplete();
        } else if (busy) {
          busy = false;
          answered(this, due, ok);
        }
      }

      private void broke() {
        if (!broken) {
          broken = true;
          idle.remove(this);
          if (warmup != null) {
            warmup.tryFail("connection closed");
            warmup = null;
          } else if (busy) {
            busy = false;
            answered(this, due, false);
          }
        }
      }
    }

    private static int indexOf(Buffer buffer, String marker) {
      int n = buffer.length() - marker.length();
      outer:
      for (int i = 0; i <= n; i++) {
        for (int j = 0; j < marker.length(); j++) {
          if (buffer.getByte(i + j) != marker.charAt(j)) {
            continue outer;
          }
        }
        return i;
      }
      return -1;
    }

    /** The Content-Length header's value, or -1 when there is none (a chunked answer is not expected here). */
    private static int contentLength(String head) {
      String name = "\r\ncontent-length:";
      for (int at = head.indexOf("\r\n"); at >= 0; at = head.indexOf("\r\n", at + 2)) {
        if (head.regionMatches(true, at, name, 0, name.length())) {
          int from = at + name.length();
          int to = head.indexOf('\r', from);
          return Integer.parseInt(head.substring(from, to < 0 ? head.length() : to).trim());
        }
      }
      return -1;
    }
  }
}
