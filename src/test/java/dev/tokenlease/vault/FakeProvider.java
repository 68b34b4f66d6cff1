package dev.tokenlease.vault;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A provider's OAuth 2.0 token endpoint on localhost that tests steer: issue tokens, fail, answer
 * slowly, or never answer. Issued values are unique and recorded, so tests can look for them.
 */
final class FakeProvider implements AutoCloseable {
  enum Mode { ISSUE, REJECT, ERROR, SLOW, SILENT }

  private final Vertx vertx = Vertx.vertx();
  private final HttpServer server;
  private final AtomicInteger calls = new AtomicInteger();
  private final List<String> issued = new ArrayList<>();
  private final List<String> requests = new ArrayList<>();
  private final List<String> authorizations = new ArrayList<>();
  private final List<Instant> callTimes = new ArrayList<>();
  private volatile Mode mode = Mode.ISSUE;
  private volatile int failuresBeforeSuccess;
  private volatile long slowMillis = 1_000;
  private volatile long expiresInSeconds = 3_600;

  FakeProvider() throws Exception {
    server = vertx.createHttpServer().requestHandler(request -> request.body().onSuccess(body -> {
      Instant at = Instant.now();
      int call = calls.incrementAndGet();
      synchronized (this) {
        callTimes.add(at);
        requests.add(body.toString());
        authorizations.add(String.valueOf(request.getHeader("Authorization")));
      }
      Mode now = failuresBeforeSuccess >= call ? Mode.ERROR : mode;
      switch (now) {
        case REJECT -> request.response().setStatusCode(400).putHeader("content-type", "application/json")
            .end("{\"error\":\"invalid_grant\",\"error_description\":\"refresh token revoked\"}");
        case ERROR -> request.response().setStatusCode(500).end("upstream exploded");
        case SILENT -> { }
        case SLOW -> vertx.setTimer(slowMillis, id -> issue(request.response()));
        case ISSUE -> issue(request.response());
      }
    })).listen(0).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private void issue(io.vertx.core.http.HttpServerResponse response) {
    String token = "provider-access-" + java.util.UUID.randomUUID();
    String refresh = "provider-refresh-" + java.util.UUID.randomUUID();
    synchronized (this) {
      issued.add(token);
      issued.add(refresh);
    }
    response.putHeader("content-type", "application/json").end(new JsonObject().put("access_token", token)
        .put("token_type", "Bearer").put("expires_in", expiresInSeconds).put("refresh_token", refresh).encode());
  }

  String url() {
    return "http://127.0.0.1:" + server.actualPort() + "/oauth/token";
  }

  FakeProvider mode(Mode mode) {
    this.mode = mode;
    return this;
  }

  FakeProvider failFirst(int calls) {
    this.failuresBeforeSuccess = this.calls.get() + calls;
    return this;
  }

  FakeProvider slow(long millis) {
    this.slowMillis = millis;
    this.mode = Mode.SLOW;
    return this;
  }

  FakeProvider expiresIn(long seconds) {
    this.expiresInSeconds = seconds;
    return this;
  }

  int calls() {
    return calls.get();
  }

  synchronized List<String> issued() {
    return List.copyOf(issued);
  }

  synchronized List<String> requests() {
    return List.copyOf(requests);
  }

  /** When each call arrived, in order. */
  synchronized List<Instant> callTimes() {
    return List.copyOf(callTimes);
  }

  synchronized List<String> authorizations() {
    return List.copyOf(authorizations);
  }

  @Override
  public void close() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }
}
