package dev.tokenlease.support;

import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Clients that lease, release and renew as fast as the service answers (each activation for a new
 * user, who then releases or renews a quarter of the time each), and keep what every request got back: an answer (status and body) or nothing (the
 * connection broke, so the outcome is unknown to the client). Bounded: it stops when told to, or
 * after {@code maxRequests} per thread.
 */
public final class LeaseLoad implements AutoCloseable {
  public enum Kind { ACTIVATE, RELEASE, RENEW }

  /**
   * One request and what came back.
   *
   * @param generation the lease's generation (for activate, from the answer; 0 if refused)
   * @param status the HTTP status, or -1 when no answer came
   * @param sentMillis wall clock just before sending
   * @param receivedMillis wall clock when the answer (or the failure) arrived
   */
  public record Outcome(Kind kind, String userId, String tokenId, long generation, int status, JsonObject body,
      long sentMillis, long receivedMillis) {
    public boolean acknowledged() {
      return status == 200;
    }

    /** An error answer: the service claims nothing changed. */
    public boolean refused() {
      return status >= 400;
    }
  }

  private static final int MAX_REQUESTS_PER_THREAD = 200_000;

  private final ConcurrentLinkedQueue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
  private final AtomicBoolean running = new AtomicBoolean(true);
  private final ExecutorService threads;

  private LeaseLoad(Http http, int clients) {
    threads = Executors.newFixedThreadPool(clients);
    for (int i = 0; i < clients; i++) {
      threads.submit(() -> run(http));
    }
  }

  public static LeaseLoad start(Http http, int clients) {
    return new LeaseLoad(http, clients);
  }

  private void run(Http http) {
    for (int i = 0; i < MAX_REQUESTS_PER_THREAD && running.get(); i++) {
      String user = UUID.randomUUID().toString();
      Outcome grant = send(http, Kind.ACTIVATE, "/api/tokens/activate", user, null, 0);
      if (!grant.acknowledged()) {
        pauseAfterRefusal(grant);
        continue;
      }
      double choice = ThreadLocalRandom.current().nextDouble();
      if (choice < 0.25) {
        send(http, Kind.RELEASE, "/api/tokens/" + grant.tokenId() + "/release", user, grant.tokenId(), grant.generation());
      } else if (choice < 0.5) {
        send(http, Kind.RENEW, "/api/tokens/" + grant.tokenId() + "/renew", user, grant.tokenId(), grant.generation());
      }
    }
  }

  /** A refused client waits a little, as a polite one would, so a refusing service is not spun on. */
  private static void pauseAfterRefusal(Outcome outcome) {
    try {
      Thread.sleep(outcome.status() == -1 ? 50 : 5);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private Outcome send(Http http, Kind kind, String path, String user, String tokenId, long generation) {
    JsonObject request = new JsonObject().put("user_id", user);
    if (generation > 0) {
      request.put("generation", generation);
    }
    long sent = System.currentTimeMillis();
    Outcome outcome;
    try {
      Http.Response response = http.post(path, request.encode());
      JsonObject body = response.raw().startsWith("{") ? response.json() : new JsonObject();
      long gen = kind == Kind.ACTIVATE ? body.getLong("generation", 0L) : generation;
      String token = kind == Kind.ACTIVATE ? body.getString("token_id") : tokenId;
      outcome = new Outcome(kind, user, token, gen, response.status(), body, sent, System.currentTimeMillis());
    } catch (RuntimeException noAnswer) {
      outcome = new Outcome(kind, user, tokenId, generation, -1, null, sent, System.currentTimeMillis());
    }
    outcomes.add(outcome);
    return outcome;
  }

  /** Stops the clients and waits for their last requests. */
  public List<Outcome> stop() throws InterruptedException {
    running.set(false);
    threads.shutdown();
    if (!threads.awaitTermination(60, TimeUnit.SECONDS)) {
      throw new AssertionError("load clients did not stop");
    }
    return new ArrayList<>(outcomes);
  }

  @Override
  public void close() throws InterruptedException {
    if (!threads.isShutdown()) {
      stop();
    }
  }
}
