package dev.tokenlease.lease.routes;

import dev.tokenlease.lease.bus.ChangeIds;
import dev.tokenlease.lease.bus.CommittedChanges;
import dev.tokenlease.lease.bus.PoolAddresses;
import dev.tokenlease.lease.bus.PoolClient;
import dev.tokenlease.lease.bus.PoolDefinitions;
import dev.tokenlease.lease.bus.PoolJson;
import dev.tokenlease.lease.bus.PoolMessages;
import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.m2m.Guard;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.http.RequestInput;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code GET /api/events} and {@code GET /api/pools/:pool/events}: every committed change of all
 * pools, or of one, as server-sent events, live, with resumption from a {@code Last-Event-ID}
 * (README, "Live changes"). Ids are those of the whole service, so a stream of one pool skips the
 * ids of the others.
 *
 * <p>One per HTTP verticle, on its event loop, like the connections it serves. Each keeps its own
 * {@link RecentChanges} ring, fed by a local consumer of {@link PoolAddresses#COMMITTED}: the pool
 * hands every batch over by reference once, its ids already assigned, and the JSON is built here,
 * so no stream adds work to the pool's event loop, and the rings of all verticles hold the same
 * change objects. No client has a buffer of its own: each has a position in the ring, and what is
 * written to it is bounded by its write queue ({@code TOKENS_EVENTS_WRITE_QUEUE}).
 *
 * <p>A client that is following live and still has a full write queue when more changes come is
 * disconnected: it cannot keep up, and waiting for it would mean buffering without bound. A client
 * that resumes with a backlog may take it at its own pace, as long as the ring still holds what it
 * needs; once the ring has moved past a client's position, it is told to {@code reset}.
 */
public final class ChangeStream {
  private static final Logger LOG = LoggerFactory.getLogger(ChangeStream.class);
  private static final String READ = "tokens:read";
  /** Events are written in chunks of at most this size (and a quarter of the write queue), the queue checked between two. */
  private static final int CHUNK_BYTES = 16 * 1024;
  /** A client not placed in the ring yet: it connected before this verticle knew where the ids stand. */
  private static final long UNPLACED = Long.MIN_VALUE;
  /** The Retry-After of a stream refused because as many are open as allowed. */
  private static final long RETRY_WHEN_FULL_SECONDS = 5;

  /** Why a client's {@code Last-Event-ID} cannot be resumed from: the {@code reason} of {@code event: reset}. */
  static final String TOO_OLD = "too_old";
  static final String OTHER_RUN = "other_run";
  static final String UNKNOWN = "unknown";

  /**
   * What the streams of all HTTP verticles share: their settings, the count of clients dropped, and
   * the number of streams open in the process (at most {@code TOKENS_EVENTS_MAX_CLIENTS}).
   */
  public static final class Shared {
    private final AppConfig.EventsConfig config;
    private final AtomicLong dropped = new AtomicLong();
    private final AtomicInteger open = new AtomicInteger();

    public Shared(AppConfig.EventsConfig config) {
      this.config = config;
    }

    /** Clients disconnected for not keeping up, since start. */
    public long dropped() {
      return dropped.get();
    }
  }

  private static final class Client {
    final HttpServerRequest request;
    final HttpServerResponse response;
    /** The pool it follows, or null for all. */
    final String pool;
    /** The id of the last change written to it, or passed over (or the one before where it starts). */
    long sent = UNPLACED;
    /** Taking the backlog it resumed with: a full write queue pauses it instead of dropping it. */
    boolean catchingUp;
    boolean closed;

    Client(HttpServerRequest request, HttpServerResponse response, String pool) {
      this.request = request;
      this.response = response;
      this.pool = pool;
    }
  }

  private final Vertx vertx;
  private final PoolClient pool;
  private final List<RequestInput.Declared> declared;
  private final Guard guard;
  private final Shared shared;
  private final RecentChanges ring;
  private final int chunkBytes;
  private final List<Client> clients = new ArrayList<>();

  public ChangeStream(Vertx vertx, PoolClient pool, List<RequestInput.Declared> declared, Guard guard, Shared shared) {
    this.vertx = vertx;
    this.pool = pool;
    this.declared = declared;
    this.guard = guard;
    this.shared = shared;
    this.ring = new RecentChanges(shared.config.ringSize());
    this.chunkBytes = Math.min(CHUNK_BYTES, shared.config.writeQueueBytes() / 4);
  }

  /** Declares the route and starts following the pool; call on the verticle's context. */
  public void mount(Router router) {
    RequestInput.route(router, declared, HttpMethod.GET, "/api/events", guard.require(READ), ctx -> open(ctx, null));
    RequestInput.route(router, declared, HttpMethod.GET, "/api/pools/:pool/events", guard.require(READ),
        this::openPool);
    vertx.eventBus().<CommittedChanges>localConsumer(PoolAddresses.COMMITTED, message -> committed(message.body()));
    // Asked after the consumer is registered: every batch from the answer's id on arrives here, in
    // order, and every batch before it has (if it was published after the registration) arrived already.
    pool.status().onSuccess(report -> {
      if (!ring.known() && report.nextChangeId() != CommittedChanges.NO_IDS) {
        ring.startAt(report.nextChangeId());
        placeWaiting(report.nextChangeId() - 1);
      }
    });
    vertx.setPeriodic(shared.config.keepAlive().toMillis(), id -> keepAlive());
  }

  /** A stream of one pool, which must exist when it opens (a pool deleted later just goes quiet). */
  private void openPool(RoutingContext ctx) {
    String name;
    try {
      name = PoolDefinitions.pathName(ctx.pathParam("pool"));
    } catch (ApiException e) {
      ctx.fail(e);
      return;
    }
    pool.getPool(new PoolMessages.GetPool(name)).onSuccess(info -> open(ctx, name)).onFailure(ctx::fail);
  }

  private void open(RoutingContext ctx, String poolName) {
    if (shared.open.incrementAndGet() > shared.config.maxClients()) {
      shared.open.decrementAndGet();
      // Each stream holds a connection and a write queue: past the limit, refuse rather than exhaust.
      ctx.fail(new ApiException(ErrorCode.UNAVAILABLE, "Too many event streams are open (at most "
          + shared.config.maxClients() + "); try again later.", RETRY_WHEN_FULL_SECONDS));
      return;
    }
    HttpServerResponse response = ctx.response()
        .setChunked(true)
        .putHeader(HttpHeaders.CONTENT_TYPE, "text/event-stream")
        .putHeader(HttpHeaders.CACHE_CONTROL, "no-store")
        // Proxies that buffer answers (nginx) pass this one on at once.
        .putHeader("X-Accel-Buffering", "no")
        .setWriteQueueMaxSize(shared.config.writeQueueBytes());
    Client client = new Client(ctx.request(), response, poolName);
    response.closeHandler(v -> forget(client));
    response.drainHandler(v -> pump(client));
    // The server is stopping: end the stream, so the client reconnects (and resumes) elsewhere or later.
    ctx.request().connection().shutdownHandler(v -> end(client));
    clients.add(client);
    Buffer first = Buffer.buffer(poolName == null ? ": live changes of all pools" : ": live changes of pool " + poolName)
        .appendString("\n\n");
    String lastEventId = lastEventId(ctx);
    String reset = null;
    if (lastEventId == null) {
      client.sent = ring.known() ? ring.next() - 1 : UNPLACED;
    } else {
      reset = resume(client, lastEventId);
    }
    if (reset != null) {
      reset(first, reset);
    }
    if (client.sent != UNPLACED) {
      // Marks where this stream starts, so that a client that reconnects at once misses nothing.
      first.appendString("id: ").appendString(Long.toString(client.sent)).appendString("\n");
    }
    if (reset != null || client.sent != UNPLACED) {
      first.appendString("\n");
    }
    response.write(first);
    pump(client);
  }

  /** The header as EventSource sends it; the query parameter for clients that cannot set headers. */
  private static String lastEventId(RoutingContext ctx) {
    String header = ctx.request().getHeader("Last-Event-ID");
    if (header != null && !header.isBlank()) {
      return header.trim();
    }
    List<String> query = ctx.queryParam("last_event_id");
    return query.isEmpty() || query.get(0).isBlank() ? null : query.get(0).trim();
  }

  /**
   * Places a client right after the change it saw last; if the ring cannot do that, places it at
   * the newest change and returns why, for the {@code event: reset} that tells it to re-read the state.
   */
  private String resume(Client client, String lastEventId) {
    long last;
    try {
      last = Long.parseLong(lastEventId);
    } catch (NumberFormatException e) {
      last = -1;
    }
    if (ring.known() && last >= ring.start() - 1 && last < ring.next()) {
      client.sent = last;
      client.catchingUp = last < ring.next() - 1;
      return null;
    }
    String reason;
    if (!ring.known() || last < 0) {
      reason = UNKNOWN;
    } else if (ChangeIds.run(last) != ChangeIds.run(ring.next())) {
      reason = OTHER_RUN;
    } else {
      reason = last < ring.start() ? TOO_OLD : UNKNOWN;
    }
    client.sent = ring.known() ? ring.next() - 1 : UNPLACED;
    return reason;
  }

  private static void reset(Buffer into, String reason) {
    into.appendString("event: reset\ndata: ").appendString(new JsonObject().put("reason", reason).encode())
        .appendString("\n");
  }

  /** Clients that connected before the ring knew where ids stand start right after {@code position}. */
  private void placeWaiting(long position) {
    for (Client client : clients) {
      if (client.sent == UNPLACED) {
        client.sent = position;
      }
    }
  }

  private void committed(CommittedChanges batch) {
    boolean wasKnown = ring.known();
    ring.append(batch);
    if (!wasKnown) {
      placeWaiting(batch.firstId() - 1);
    }
    if (clients.isEmpty()) {
      return;
    }
    for (Client client : clients.toArray(new Client[0])) {
      if (!client.catchingUp && client.response.writeQueueFull()) {
        drop(client);
      } else {
        pump(client);
      }
    }
  }

  /** Writes what the client has not had yet, as far as its write queue takes it. */
  private void pump(Client client) {
    if (client.closed || client.sent == UNPLACED) {
      return;
    }
    if (client.sent < ring.start() - 1) {
      // The ring no longer holds its next change: it must re-read the state, then follow from now.
      client.sent = ring.next() - 1;
      client.catchingUp = false;
      Buffer reset = Buffer.buffer();
      reset(reset, TOO_OLD);
      client.response.write(reset.appendString("id: ").appendString(Long.toString(client.sent)).appendString("\n\n"));
    }
    while (client.sent < ring.next() - 1) {
      if (client.response.writeQueueFull()) {
        return; // the drain handler goes on
      }
      Buffer chunk = Buffer.buffer(chunkBytes + 1024);
      while (client.sent < ring.next() - 1 && chunk.length() < chunkBytes) {
        long id = client.sent + 1;
        if (client.pool == null || client.pool.equals(ring.get(id).pool())) {
          chunk.appendBuffer(ring.frame(id, ChangeStream::encodeEvent));
        }
        client.sent = id;
      }
      client.response.write(chunk);
    }
    client.catchingUp = false;
  }

  private static Buffer encodeEvent(long id, PoolChange change) {
    return Buffer.buffer().appendString("id: ").appendString(Long.toString(id))
        .appendString("\nevent: ").appendString(change.eventType())
        .appendString("\ndata: ").appendBuffer(PoolJson.event(change, id).toBuffer())
        .appendString("\n\n");
  }

  /**
   * Every interval: a comment line to each stream, so that neither the server's idle timeout nor
   * a proxy's closes a quiet one; and the end of streams whose bearer token expired or was revoked.
   */
  private void keepAlive() {
    for (Client client : clients.toArray(new Client[0])) {
      if (!guard.stillAuthorized(client.request)) {
        end(client);
      } else if (!client.response.writeQueueFull()) {
        client.response.write(": keep-alive\n\n");
      }
    }
  }

  private void drop(Client client) {
    long dropped = shared.dropped.incrementAndGet();
    LOG.warn("Disconnected a live-changes client that did not keep up: its write queue ({} bytes) was still full when "
        + "more changes came ({} disconnected since start)", shared.config.writeQueueBytes(), dropped);
    forget(client);
    client.request.connection().close();
  }

  /** Ends a stream in good order; the client may reconnect. */
  private void end(Client client) {
    if (!client.closed) {
      forget(client);
      client.response.end();
    }
  }

  private void forget(Client client) {
    if (!client.closed) {
      client.closed = true;
      clients.remove(client);
      shared.open.decrementAndGet();
    }
  }
}
