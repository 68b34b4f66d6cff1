package dev.tokenlease.bench;

import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.time.Duration;
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
 * own event loop with its own connections.
 */
final class OpenLoopLoad {
  /** One request to send. */
  /** One request; {@code authorization} is an Authorization header value, or null. */
  record Call(HttpMethod method, String path, Buffer body, String authorization) {
    Call(HttpMethod method, String path, Buffer body) {
      this(method, path, body, null);
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
    List<Sender> finished = new CopyOnWriteArrayList<>();
    long start = System.nanoTime() + 100_000_000L;
    try {
      vertx.deployVerticle(() -> new Sender(port, rate / senders, start, duration.toNanos(),
              Math.max(1, connections / senders), calls, finished),
          new DeploymentOptions().setInstances(senders)).toCompletionStage().toCompletableFuture()
          .get(30, TimeUnit.SECONDS);
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

  /** Sends its share of the load from one event loop and records each answer's latency. */
  private static final class Sender extends VerticleBase {
    private final int port;
    private final long interval;
    private final long start;
    private final long end;
    private final int connections;
    private final Supplier<Call> calls;
    private final List<Sender> finished;
    private final Histogram histogram = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
    private long sent;
    private long completed;
    private long errors;
    private long next;
    private HttpClient client;

    Sender(int port, double rate, long start, long durationNanos, int connections, Supplier<Call> calls,
        List<Sender> finished) {
      this.port = port;
      this.interval = (long) (1_000_000_000L / rate);
      this.start = start;
      this.end = start + durationNanos;
      this.connections = connections;
      this.calls = calls;
      this.finished = finished;
    }

    @Override
    public Future<?> start() {
      client = vertx.createHttpClient(
          new HttpClientOptions().setDefaultHost("127.0.0.1").setDefaultPort(port).setKeepAlive(true),
          new PoolOptions().setHttp1MaxSize(connections).setMaxWaitQueueSize(-1));
      next = start;
      vertx.setPeriodic(1, timer -> {
        long now = System.nanoTime();
        while (next <= now && next < end) {
          send(next);
          next += interval;
        }
        if (next >= end) {
          vertx.cancelTimer(timer);
          awaitAnswers(Promise.promise(), System.nanoTime() + TimeUnit.SECONDS.toNanos(30));
        }
      });
      return Future.succeededFuture();
    }

    private void send(long due) {
      sent++;
      Call call = calls.get();
      RequestOptions options = new RequestOptions().setMethod(call.method()).setURI(call.path())
          .putHeader("content-type", "application/json");
      if (call.authorization() != null) {
        options.putHeader("authorization", call.authorization());
      }
      client.request(options)
          .compose(request -> call.body() == null ? request.send() : request.send(call.body()))
          .compose(response -> response.body().map(body -> response.statusCode()))
          .onComplete(done -> {
            long micros = Math.max(1, (System.nanoTime() - due) / 1_000);
            histogram.recordValue(Math.min(micros, histogram.getHighestTrackableValue()));
            if (done.failed() || done.result() >= 400) {
              errors++;
            }
            completed++;
          });
    }

    private void awaitAnswers(Promise<Void> done, long deadline) {
      if (completed >= sent || System.nanoTime() > deadline) {
        finished.add(this);
        return;
      }
      vertx.setTimer(10, id -> awaitAnswers(done, deadline));
    }
  }
}
