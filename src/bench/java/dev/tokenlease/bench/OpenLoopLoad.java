package dev.tokenlease.bench;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.HdrHistogram.Histogram;

/**
 * Open-loop load at a fixed rate: request i is due at {@code start + i / rate} whether or not earlier
 * ones have been answered, and its latency is measured from that due time, not from when a
 * connection became free. A slow server therefore shows up as latency instead of silently lowering
 * the offered load (coordinated omission).
 */
final class OpenLoopLoad {
  /** One request to send. */
  record Call(HttpMethod method, String path, Buffer body) {}

  /** Latency in microseconds, and what went wrong. */
  record Result(Histogram latencyMicros, long sent, long errors, double offeredRate, double achievedRate) {}

  private OpenLoopLoad() {}

  static Result run(int port, double rate, Duration duration, int connections, Supplier<Call> calls)
      throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      HttpClient client = vertx.createHttpClient(
          new HttpClientOptions().setDefaultHost("127.0.0.1").setDefaultPort(port).setKeepAlive(true),
          new PoolOptions().setHttp1MaxSize(connections).setMaxWaitQueueSize(-1));
      Histogram histogram = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
      AtomicLong errors = new AtomicLong();
      AtomicLong completed = new AtomicLong();
      long interval = (long) (1_000_000_000L / rate);
      long start = System.nanoTime() + 50_000_000L;
      long end = start + duration.toNanos();
      long[] next = {start};
      long[] sent = {0};
      CompletableFuture<Void> allSent = new CompletableFuture<>();
      vertx.setPeriodic(1, timer -> {
        long now = System.nanoTime();
        while (next[0] <= now && next[0] < end) {
          long due = next[0];
          next[0] += interval;
          sent[0]++;
          Call call = calls.get();
          client.request(new RequestOptions().setMethod(call.method()).setURI(call.path())
                  .putHeader("content-type", "application/json"))
              .compose(request -> call.body() == null ? request.send() : request.send(call.body()))
              .compose(response -> response.body().map(body -> response.statusCode()))
              .onComplete(done -> {
                long micros = Math.max(1, (System.nanoTime() - due) / 1_000);
                synchronized (histogram) {
                  histogram.recordValue(Math.min(micros, histogram.getHighestTrackableValue()));
                }
                if (done.failed() || done.result() >= 400) {
                  errors.incrementAndGet();
                }
                completed.incrementAndGet();
              });
        }
        if (next[0] >= end) {
          vertx.cancelTimer(timer);
          allSent.complete(null);
        }
      });
      allSent.get(duration.toMillis() + 10_000, TimeUnit.MILLISECONDS);
      long sentTotal = sent[0];
      long drainDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (completed.get() < sentTotal && System.nanoTime() < drainDeadline) {
        Thread.sleep(10);
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      errors.addAndGet(sentTotal - completed.get());
      return new Result(histogram, sentTotal, errors.get(), rate, completed.get() / seconds);
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }
}
