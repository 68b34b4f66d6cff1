package dev.tokenlease.lease.routes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.lease.bus.ChangeIds;
import dev.tokenlease.lease.bus.PoolAddresses;
import dev.tokenlease.support.EventStreamClient;
import dev.tokenlease.support.EventStreamClient.Frame;
import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.Http;
import dev.tokenlease.support.RunningService;
import dev.tokenlease.support.TestDatabase;
import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code GET /api/events} against the running service and a real PostgreSQL: what a client reads
 * (README, "Live changes"), read as it arrives. Waits are for frames, each with a deadline.
 */
@DisplayName("Live changes (server-sent events)")
class ChangeStreamTest {
  private static final Duration WAIT = Duration.ofSeconds(10);
  private static final int RING = 30;

  /** Reads a stream up to the grant of {@code grant} (checking that its ids are consecutive) and returns what it read. */
  private static List<Frame> through(EventStreamClient stream, JsonObject grant) {
    List<Frame> events = new ArrayList<>();
    while (events.isEmpty() || !isGrantOf(events.get(events.size() - 1), grant)) {
      Frame event = stream.nextEvent(WAIT);
      if (!events.isEmpty()) {
        assertThat(event.idNumber()).as("the id after %s", events.get(events.size() - 1))
            .isEqualTo(events.get(events.size() - 1).idNumber() + 1);
      }
      events.add(event);
    }
    return events;
  }

  private static boolean isGrantOf(Frame event, JsonObject grant) {
    return event.event().equals("granted") && event.json().getLong("generation").equals(grant.getLong("generation"));
  }

  private static Frame resetOf(EventStreamClient stream) {
    Frame frame = stream.nextEvent(WAIT);
    assertThat(frame.event()).as("the first event: %s", frame).isEqualTo("reset");
    return frame;
  }

  @Nested
  @TestInstance(TestInstance.Lifecycle.PER_CLASS)
  @DisplayName("on one service")
  class OneService {
    private String database;
    private RunningService service;
    private Http http;

    @BeforeAll
    void start() throws Exception {
      database = TestDatabase.create();
      service = RunningService.start(database, new JsonObject()
          .put("TOKENS_POOL_SIZE", 3)
          .put("TOKENS_EVENTS_RING", RING)
          .put("TOKENS_EVENTS_KEEP_ALIVE", "PT0.2S")
          .put("TOKENS_EVENTS_WRITE_QUEUE", 8192));
      http = service.http();
    }

    @AfterAll
    void stop() {
      if (service != null) {
        service.close();
      }
      TestDatabase.drop(database);
    }

    private EventStreamClient open(String... headers) {
      EventStreamClient stream = EventStreamClient.open(service.port(), "/api/events", headers);
      assertThat(stream.status()).isEqualTo(200);
      return stream;
    }

    private JsonObject lease(String verb, JsonObject grant) {
      Http.Response answer = http.post("/api/tokens/" + grant.getString("token_id") + "/" + verb,
          new JsonObject().put("user_id", grant.getString("user_id")).encode());
      assertThat(answer.status()).as(answer.toString()).isEqualTo(200);
      return answer.json();
    }

    /** One change that shows up on every stream: a grant to a new user, released again. */
    private JsonObject grant() {
      return http.activate(UUID.randomUUID().toString());
    }

    @Test
    @DisplayName("the answer is text/event-stream, not cached, and opens with a comment and the id it starts after")
    void head() {
      try (EventStreamClient stream = open()) {
        assertThat(stream.header("content-type")).isEqualTo("text/event-stream");
        assertThat(stream.header("cache-control")).isEqualTo("no-store");
        Frame first = stream.next(WAIT);
        assertThat(first.comments()).containsExactly("live changes of all pools");
        Frame position = stream.next(WAIT);
        assertThat(position.isEvent()).isFalse();
        assertThat(position.id()).matches("\\d+");
      }
    }

    @Test
    @DisplayName("activation, renewal, release, eviction and clearing arrive in commit order, with consecutive ids and the change as JSON")
    void changes() {
      http.delete("/api/tokens/active");
      try (EventStreamClient stream = open()) {
        String user = UUID.randomUUID().toString();
        JsonObject grant = http.activate(user);
        lease("renew", grant);
        lease("release", grant);
        List<String> others = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
          others.add(http.activate(UUID.randomUUID().toString()).getString("user_id"));
        }
        assertThat(http.delete("/api/tokens/active").json().getInteger("cleared_count")).isEqualTo(3);

        Set<String> users = Set.of(user, others.get(0), others.get(1), others.get(2), others.get(3));
        List<Frame> mine = new ArrayList<>();
        Frame previous = null;
        while (mine.size() < 11) {
          Frame event = stream.nextEvent(WAIT);
          if (previous != null) {
            assertThat(event.idNumber()).as("the id after %s", previous).isEqualTo(previous.idNumber() + 1);
          }
          previous = event;
          if (users.contains(event.json().getString("user_id"))) {
            mine.add(event);
          }
        }
        assertThat(mine).extracting(Frame::event).containsExactly("granted", "renewed", "released", "granted", "granted",
            "granted", "evicted", "granted", "cleared", "cleared", "cleared");
        for (Frame event : mine) {
          JsonObject data = event.json();
          assertThat(data.getLong("id")).isEqualTo(event.idNumber());
          assertThat(data.getString("type")).isEqualTo(event.event());
          assertThat(data.getString("pool")).isEqualTo("default");
          assertThat(data.fieldNames()).containsExactlyInAnyOrder("id", "pool", "type", "token_id", "user_id",
              "generation", "started_at", "expires_at", "ended_at");
          assertThat(data.getString("started_at")).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ");
          boolean ended = !Set.of("granted", "renewed").contains(event.event());
          assertThat(data.getValue("ended_at") != null).as("ended_at of %s", event.event()).isEqualTo(ended);
        }
        JsonObject granted = mine.get(0).json();
        assertThat(granted.getString("token_id")).isEqualTo(grant.getString("token_id"));
        assertThat(granted.getString("user_id")).isEqualTo(user);
        assertThat(granted.getLong("generation")).isEqualTo(grant.getLong("generation"));
        assertThat(granted.getString("expires_at")).isEqualTo(grant.getString("expires_at"));
        assertThat(mine.get(6).json().getString("user_id")).as("the oldest lease is evicted").isEqualTo(others.get(0));
      }
    }

    @Test
    @DisplayName("a client that reconnects with Last-Event-ID gets exactly the changes it missed, then the live ones")
    void resume() {
      try (EventStreamClient reference = open()) {
        long seen;
        try (EventStreamClient stream = open()) {
          grant();
          seen = stream.nextEvent(WAIT).idNumber();
        }
        JsonObject grant = grant();
        lease("renew", grant);
        lease("release", grant);
        JsonObject last = grant();
        List<Frame> before = reference.eventsThrough(seen, WAIT);
        assertThat(before.get(before.size() - 1).idNumber()).isEqualTo(seen);
        List<Frame> missed = through(reference, last);
        assertThat(missed).extracting(Frame::event).contains("renewed", "released");

        try (EventStreamClient resumed = open("Last-Event-ID", Long.toString(seen))) {
          assertThat(resumed.events(missed.size(), WAIT)).isEqualTo(missed);
          JsonObject live = grant();
          assertThat(through(resumed, live)).isEqualTo(through(reference, live));
        }
        try (EventStreamClient polyfill = EventStreamClient.open(service.port(), "/api/events?last_event_id=" + seen)) {
          assertThat(polyfill.events(missed.size(), WAIT)).isEqualTo(missed);
        }
      }
    }

    @Test
    @DisplayName("a Last-Event-ID older than the ring, of another run, in the future or not an id gets a reset first, then the live stream")
    void reset() {
      try (EventStreamClient reference = open()) {
        List<Frame> seen = through(reference, grant());
        long old = seen.get(seen.size() - 1).idNumber();
        JsonObject last = null;
        for (int i = 0; i < RING + 1; i++) {
          last = grant();
        }
        seen = through(reference, last);
        long newest = seen.get(seen.size() - 1).idNumber();
        assertThat(newest - old).isGreaterThan(RING);
        for (String[] lastAndReason : new String[][] {{Long.toString(old), "too_old"},
            {Long.toString(old - (1L << 32)), "other_run"}, {Long.toString(newest + 1000), "unknown"},
            {"not-an-id", "unknown"}}) {
          try (EventStreamClient stream = open("Last-Event-ID", lastAndReason[0])) {
            Frame reset = resetOf(stream);
            assertThat(reset.json()).isEqualTo(new JsonObject().put("reason", lastAndReason[1]));
            assertThat(reset.idNumber()).as("the reset's id is where the stream goes on").isEqualTo(newest);
            JsonObject grant = grant();
            List<Frame> live = through(stream, grant);
            assertThat(live).isEqualTo(through(reference, grant));
            assertThat(live.get(0).idNumber()).isEqualTo(reset.idNumber() + 1);
            newest = live.get(live.size() - 1).idNumber();
          }
        }
      }
    }

    @Test
    @DisplayName("a quiet stream gets a keep-alive comment every interval")
    void keepAlive() {
      try (EventStreamClient stream = open()) {
        long start = System.nanoTime();
        Frame frame;
        do {
          frame = stream.next(WAIT);
        } while (!frame.comments().contains("keep-alive"));
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
      }
    }
  }

  @Nested
  @TestInstance(TestInstance.Lifecycle.PER_CLASS)
  @DisplayName("with a client that stops reading")
  class SlowClient {
    private String database;
    private RunningService service;
    private Http http;

    @BeforeAll
    void start() throws Exception {
      database = TestDatabase.create();
      // The default ring: batches of thousands of changes must fit in it, or every client is reset instead.
      service = RunningService.start(database, new JsonObject()
          .put("TOKENS_POOL_SIZE", 3)
          .put("TOKENS_EVENTS_WRITE_QUEUE", 8192));
      http = service.http();
    }

    @AfterAll
    void stop() {
      if (service != null) {
        service.close();
      }
      TestDatabase.drop(database);
    }

    private JsonObject grant() {
      return http.activate(UUID.randomUUID().toString());
    }

    @Test
    @DisplayName("a client that does not read is disconnected once its write queue is full; the pool and the other streams go on")
    void slowClient() throws Exception {
      EventBus bus = service.vertx().eventBus();
      try (EventStreamClient reader = EventStreamClient.open(service.port(), "/api/events"); Socket stalled = new Socket()) {
        stalled.setReceiveBufferSize(1024);
        stalled.connect(new InetSocketAddress("127.0.0.1", service.port()), 5000);
        stalled.getOutputStream().write("GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n"
            .getBytes(StandardCharsets.US_ASCII));
        stalled.getOutputStream().flush();
        JsonObject last = null;
        long slowest = 0;
        // Rounds of activations over the event bus (fast enough to fill the kernel's socket buffers
        // too, whatever their size) until the stalled client is gone; each round also times one over HTTP.
        for (int round = 0; round < 100 && service.droppedStreams() == 0; round++) {
          List<Future<Message<JsonObject>>> grants = new ArrayList<>();
          for (int i = 0; i < 2000; i++) {
            grants.add(bus.request(PoolAddresses.JSON_ACTIVATE, new JsonObject().put("user_id", UUID.randomUUID().toString())));
          }
          Future.all(grants).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
          long started = System.nanoTime();
          last = grant();
          slowest = Math.max(slowest, System.nanoTime() - started);
        }
        assertThat(service.droppedStreams()).as("clients dropped").isEqualTo(1);
        assertThat(Duration.ofNanos(slowest)).as("the slowest activation over HTTP meanwhile").isLessThan(Duration.ofSeconds(1));
        assertThat(readToEnd(stalled)).as("the server closed the stalled stream").isTrue();
        assertThat(through(reader, last)).as("what the reading client got, every change in order").isNotEmpty();
        long started = System.nanoTime();
        grant();
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(1));
      }
    }

    /** Reads until the server closes the connection (true), or until the deadline passes with it still open. */
    private boolean readToEnd(Socket socket) throws IOException {
      long deadline = System.nanoTime() + WAIT.toNanos();
      socket.setSoTimeout(500);
      InputStream in = socket.getInputStream();
      byte[] buffer = new byte[64 * 1024];
      while (System.nanoTime() - deadline < 0) {
        try {
          if (in.read(buffer) == -1) {
            return true;
          }
        } catch (SocketTimeoutException e) {
          // nothing for a while: look at the deadline
        } catch (SocketException e) {
          return true; // reset by the server
        }
      }
      return false;
    }
  }

  @Nested
  @TestInstance(TestInstance.Lifecycle.PER_CLASS)
  @DisplayName("across a restart")
  class AcrossARestart {
    private String database;

    @BeforeAll
    void create() {
      database = TestDatabase.create();
    }

    @AfterAll
    void drop() {
      TestDatabase.drop(database);
    }

    @Test
    @DisplayName("stopping the service ends its streams; after the restart ids go on above the old ones, and an old Last-Event-ID gets a reset")
    void restart() throws Exception {
      long before;
      try (RunningService first = RunningService.start(database);
          EventStreamClient stream = EventStreamClient.open(first.port(), "/api/events")) {
        List<Frame> seen = through(stream, first.http().activate(UUID.randomUUID().toString()));
        before = seen.get(seen.size() - 1).idNumber();
        long stopping = System.nanoTime();
        first.close();
        assertThat(stream.endsWithin(WAIT)).as("the stream ended with the service").isTrue();
        assertThat(Duration.ofNanos(System.nanoTime() - stopping)).as("stopping with a stream open")
            .isLessThan(Duration.ofSeconds(5));
      }
      try (RunningService second = RunningService.start(database);
          EventStreamClient stream = EventStreamClient.open(second.port(), "/api/events",
              "Last-Event-ID", Long.toString(before))) {
        Frame reset = resetOf(stream);
        assertThat(reset.json().getString("reason")).isEqualTo("other_run");
        List<Frame> live = through(stream, second.http().activate(UUID.randomUUID().toString()));
        long after = live.get(0).idNumber();
        assertThat(after).isEqualTo(reset.idNumber() + 1).isGreaterThan(before);
        assertThat(ChangeIds.run(after)).as("the next writer epoch").isEqualTo(ChangeIds.run(before) + 1);
      }
    }
  }

  @Nested
  @TestInstance(TestInstance.Lifecycle.PER_CLASS)
  @DisplayName("with authentication on")
  class WithAuthentication {
    private static final String ADMIN = "stream-admin";
    private final String secret = "admin-secret-" + UUID.randomUUID();
    private String database;
    private RunningService service;

    @BeforeAll
    void start() throws Exception {
      database = TestDatabase.create();
      service = RunningService.start(database, new JsonObject()
          .put("TOKENS_AUTH_REQUIRED", true)
          .put("TOKENS_ADMIN_CLIENT_ID", ADMIN)
          .put("TOKENS_ADMIN_CLIENT_SECRET", secret)
          .put("TOKENS_EVENTS_KEEP_ALIVE", "PT0.2S"));
    }

    @AfterAll
    void stop() {
      if (service != null) {
        service.close();
      }
      TestDatabase.drop(database);
    }

    private String basic() {
      return "Basic " + Base64.getEncoder().encodeToString((ADMIN + ":" + secret).getBytes(StandardCharsets.UTF_8));
    }

    private String token(String scope) {
      Http.Response answer = service.http().request("POST", "/oauth/token", "grant_type=client_credentials&scope=" + scope,
          "Content-Type", "application/x-www-form-urlencoded", "Authorization", basic());
      assertThat(answer.status()).as(answer.toString()).isEqualTo(200);
      return answer.json().getString("access_token");
    }

    @Test
    @DisplayName("the stream needs a bearer token with tokens:read, and ends once that token is revoked")
    void needsTokensRead() {
      Http.Response anonymous = service.http().get("/api/events");
      assertThat(anonymous.status()).isEqualTo(401);
      assertThat(anonymous.header("WWW-Authenticate")).startsWith("Bearer");
      assertThat(anonymous.json().getString("status")).isEqualTo("unauthorized");
      Http.Response writer = service.http().request("GET", "/api/events", null,
          "Authorization", "Bearer " + token("tokens:write"));
      assertThat(writer.status()).isEqualTo(403);

      String reader = token("tokens:read");
      try (EventStreamClient stream = EventStreamClient.open(service.port(), "/api/events",
          "Authorization", "Bearer " + reader)) {
        assertThat(stream.status()).isEqualTo(200);
        assertThat(stream.next(WAIT).comments()).containsExactly("live changes of all pools");
        assertThat(stream.endsWithin(Duration.ofSeconds(1))).as("open while the token lives").isFalse();
        Http.Response revoked = service.http().request("POST", "/oauth/revoke", "token=" + reader,
            "Content-Type", "application/x-www-form-urlencoded", "Authorization", basic());
        assertThat(revoked.status()).isEqualTo(200);
        assertThat(stream.endsWithin(WAIT)).as("ended after the revocation").isTrue();
      }
    }
  }

  @Test
  @DisplayName("past TOKENS_EVENTS_MAX_CLIENTS open streams, one more is refused 503 with Retry-After until one closes")
  void clientLimit() throws Exception {
    String database = TestDatabase.create();
    try (RunningService service = RunningService.start(database, new JsonObject().put("TOKENS_EVENTS_MAX_CLIENTS", 2))) {
      EventStreamClient first = EventStreamClient.open(service.port(), "/api/events");
      try (EventStreamClient second = EventStreamClient.open(service.port(), "/api/events")) {
        assertThat(first.status()).isEqualTo(200);
        assertThat(second.status()).isEqualTo(200);
        Http.Response refused = service.http().get("/api/events");
        assertThat(refused.status()).isEqualTo(503);
        assertThat(refused.header("Retry-After")).isEqualTo("5");
        assertThat(refused.json()).isEqualTo(new JsonObject().put("status", "unavailable")
            .put("message", "Too many event streams are open (at most 2); try again later."));
        first.close();
        int status = Eventually.until("a stream admitted again", WAIT, () -> {
          try (EventStreamClient again = EventStreamClient.open(service.port(), "/api/events")) {
            return again.status();
          }
        }, code -> code == 200);
        assertThat(status).isEqualTo(200);
      }
    } finally {
      TestDatabase.drop(database);
    }
  }
}
