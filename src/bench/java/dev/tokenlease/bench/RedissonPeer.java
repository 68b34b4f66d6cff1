package dev.tokenlease.bench;

import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;
import org.redisson.Redisson;
import org.redisson.api.RPermitExpirableSemaphore;
import org.redisson.api.RedissonClient;
import org.redisson.config.Config;

/**
 * The peer a Java team would pick instead of this service: Redisson's
 * {@link RPermitExpirableSemaphore} on a local Redis, as many permits as the service's pool has
 * tokens, each acquired with the same lease time. Closed loops from Redisson's async client in this
 * process, as many as the service's benchmark has connections, each acquiring a permit and releasing
 * it. It has no HTTP, no history and no durability, so it is a generous baseline.
 */
final class RedissonPeer {
  /** Lease + release cycles per second, and the latency of one cycle (acquire, then release). */
  record Result(double cyclesPerSecond, long failed, double p50Millis, double p99Millis) {}

  private RedissonPeer() {}

  /** Whether a Redis server answers at {@code host:port} (the peer is skipped otherwise). */
  static boolean reachable(String host, int port) {
    try (java.net.Socket socket = new java.net.Socket()) {
      socket.connect(new java.net.InetSocketAddress(host, port), 500);
      return true;
    } catch (java.io.IOException e) {
      return false;
    }
  }

  static Result run(String host, int port, int permits, Duration leaseTime, int loops, Duration warmup,
      Duration measured) throws Exception {
    Config config = new Config();
    config.useSingleServer().setAddress("redis://" + host + ":" + port)
        .setConnectionPoolSize(Math.max(64, loops)).setConnectionMinimumIdleSize(Math.max(24, loops / 2));
    RedissonClient client = Redisson.create(config);
    String name = "tokens-bench-" + UUID.randomUUID();
    RPermitExpirableSemaphore semaphore = client.getPermitExpirableSemaphore(name);
    try {
      if (!semaphore.trySetPermits(permits)) {
        throw new IllegalStateException("semaphore " + name + " exists already");
      }
      cycles(semaphore, leaseTime, loops, warmup);
      return cycles(semaphore, leaseTime, loops, measured);
    } finally {
      semaphore.delete();
      client.shutdown();
    }
  }

  private static Result cycles(RPermitExpirableSemaphore semaphore, Duration leaseTime, int loops, Duration length)
      throws InterruptedException {
    AtomicBoolean running = new AtomicBoolean(true);
    AtomicLong done = new AtomicLong();
    AtomicLong failed = new AtomicLong();
    Histogram latency = new ConcurrentHistogram(TimeUnit.SECONDS.toMicros(60), 3);
    CountDownLatch stopped = new CountDownLatch(loops);
    long start = System.nanoTime();
    for (int i = 0; i < loops; i++) {
      cycle(semaphore, leaseTime, running, done, failed, latency, stopped);
    }
    Thread.sleep(length.toMillis());
    running.set(false);
    long elapsed = System.nanoTime() - start;
    long completed = done.get();
    stopped.await(30, TimeUnit.SECONDS);
    return new Result(completed / (elapsed / 1e9), failed.get(), latency.getValueAtPercentile(50) / 1000.0,
        latency.getValueAtPercentile(99) / 1000.0);
  }

  /** One loop: acquire a permit with the lease time, release it, and again until told to stop. */
  private static void cycle(RPermitExpirableSemaphore semaphore, Duration leaseTime, AtomicBoolean running,
      AtomicLong done, AtomicLong failed, Histogram latency, CountDownLatch stopped) {
    if (!running.get()) {
      stopped.countDown();
      return;
    }
    long began = System.nanoTime();
    semaphore.acquireAsync(leaseTime.toMillis(), TimeUnit.MILLISECONDS)
        .thenCompose(permit -> semaphore.releaseAsync(permit))
        .whenComplete((ok, error) -> {
          if (error == null) {
            done.incrementAndGet();
            latency.recordValue(Math.max(1, (System.nanoTime() - began) / 1000));
          } else {
            failed.incrementAndGet();
          }
          cycle(semaphore, leaseTime, running, done, failed, latency, stopped);
        });
  }
}
