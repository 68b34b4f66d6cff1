package dev.tokenlease.bench;

import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import io.vertx.sqlclient.Row;
import io.vertx.sqlclient.RowSet;
import io.vertx.sqlclient.Tuple;
import java.util.UUID;

/**
 * The two comparison servers of the benchmark, each run as its own process on the same HTTP stack
 * as the service (Vert.x Web router, body handler, one verticle per core):
 *
 * <ul>
 *   <li>{@code noop}: answers {@code POST /api/tokens/activate} with a constant JSON body the size of
 *       an activation reply, touching nothing else: the ceiling of the stack on this machine.
 *   <li>{@code dblock}: the seed's design, each activation one PostgreSQL transaction that locks a
 *       token row ({@code FOR UPDATE SKIP LOCKED}), ends the evicted usage, updates the token and
 *       inserts the usage: two prepared statements in one transaction, on a shared connection pool.
 * </ul>
 *
 * <p>Usage: {@code BenchServer noop <port> <instances>} or
 * {@code BenchServer dblock <port> <instances> <postgresql-url> <pool-size> <connections>}.
 */
public final class BenchServer {
  /**
   * As long as a real activation reply on a full pool (the service scenarios evict on every
   * activation): same field names, UUIDs, six-digit generations, the evicted lease.
   */
  static final Buffer NOOP_REPLY = new JsonObject()
      .put("token_id", "c1ab147f-6908-496b-894f-2fa877022f56")
      .put("user_id", "550e8400-e29b-41d4-a716-446655440000")
      .put("generation", 123456)
      .put("expires_at", "2025-12-19T15:14:02Z")
      .put("evicted", new JsonObject()
          .put("token_id", "c1ab147f-6908-496b-894f-2fa877022f56")
          .put("user_id", "660e8400-e29b-41d4-a716-446655440001")
          .put("generation", 123356)
          .put("held_ms", 1042))
      .toBuffer();

  static final String DBLOCK_SCHEMA = """
      CREATE TABLE IF NOT EXISTS dbl_tokens (
        id uuid PRIMARY KEY, state text NOT NULL, current_user_id uuid,
        activated_at timestamptz, released_at timestamptz, usage_count bigint NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS dbl_usages (
        id bigserial PRIMARY KEY, token_id uuid NOT NULL REFERENCES dbl_tokens (id), user_id uuid NOT NULL,
        started_at timestamptz NOT NULL, ended_at timestamptz, end_reason text,
        CONSTRAINT dbl_one_open EXCLUDE USING btree (token_id WITH =) WHERE (ended_at IS NULL)
          DEFERRABLE INITIALLY DEFERRED);
      CREATE INDEX IF NOT EXISTS dbl_free ON dbl_tokens (released_at NULLS FIRST, id) WHERE state = 'available';
      CREATE INDEX IF NOT EXISTS dbl_oldest ON dbl_tokens (activated_at, id) WHERE state = 'active';
      """;

  /**
   * First statement of an activation: lock and grant the free token released longest ago, or else
   * the oldest active one. Row locks let concurrent activations skip each other's rows.
   */
  static final String DBLOCK_GRANT = """
      WITH free AS (
        SELECT id, state FROM dbl_tokens WHERE state = 'available'
         ORDER BY released_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED
      ), oldest AS (
        SELECT id, state FROM dbl_tokens WHERE state = 'active' AND NOT EXISTS (SELECT 1 FROM free)
         ORDER BY activated_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
      ), pick AS (
        SELECT * FROM free UNION ALL SELECT * FROM oldest
      )
      UPDATE dbl_tokens t SET state = 'active', current_user_id = $1, activated_at = clock_timestamp(),
             released_at = NULL, usage_count = t.usage_count + 1
        FROM pick WHERE t.id = pick.id
      RETURNING t.id, t.activated_at
      """;

  /**
   * Second statement, on a fresh snapshot taken after the row lock was granted (a single statement
   * would not see a usage committed by the previous holder while it waited): end the previous
   * usage, if any, and record the new one.
   */
  static final String DBLOCK_RECORD = """
      WITH ended AS (
        UPDATE dbl_usages SET ended_at = $3, end_reason = 'evicted' WHERE token_id = $1 AND ended_at IS NULL
      )
      INSERT INTO dbl_usages (token_id, user_id, started_at) VALUES ($1, $2, $3)
      """;

  private BenchServer() {}

  public static void main(String[] args) {
    String mode = args[0];
    int port = Integer.parseInt(args[1]);
    int instances = Integer.parseInt(args[2]);
    Vertx vertx = Vertx.vertx();
    Future<?> ready;
    if ("noop".equals(mode)) {
      ready = vertx.deployVerticle(() -> new Noop(port), new DeploymentOptions().setInstances(instances));
    } else if ("dblock".equals(mode)) {
      PgConnectOptions connect = PgConnectOptions.fromUri(args[3]);
      int poolSize = Integer.parseInt(args[4]);
      int connections = Integer.parseInt(args[5]);
      ready = prepareDblock(vertx, connect, poolSize).compose(v ->
          vertx.deployVerticle(() -> new Dblock(port, connect, connections), new DeploymentOptions().setInstances(instances)));
    } else {
      throw new IllegalArgumentException("mode must be noop or dblock: " + mode);
    }
    ready.onSuccess(id -> System.out.println("ready on port " + port))
        .onFailure(err -> {
          err.printStackTrace();
          System.exit(1);
        });
  }

  private static Future<Void> prepareDblock(Vertx vertx, PgConnectOptions connect, int poolSize) {
    Pool setup = PgBuilder.pool().connectingTo(connect).using(vertx).build();
    return setup.query(DBLOCK_SCHEMA).execute()
        .compose(v -> setup.query("SELECT count(*) AS n FROM dbl_tokens").execute())
        .compose(rows -> {
          long have = rows.iterator().next().getLong("n");
          return have >= poolSize ? Future.succeededFuture()
              : setup.preparedQuery("INSERT INTO dbl_tokens (id, state) SELECT gen_random_uuid(), 'available' "
                  + "FROM generate_series(1, $1)").execute(Tuple.of((int) (poolSize - have))).mapEmpty();
        })
        .eventually(setup::close)
        .mapEmpty();
  }

  private static Router router(Vertx vertx) {
    Router router = Router.router(vertx);
    router.route().handler(BodyHandler.create(false).setBodyLimit(64 * 1024));
    return router;
  }

  /** The ceiling: same stack, no work. */
  static final class Noop extends VerticleBase {
    private final int port;

    Noop(int port) {
      this.port = port;
    }

    @Override
    public Future<?> start() {
      Router router = router(vertx);
      router.post("/api/tokens/activate").handler(ctx -> ctx.response()
          .putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
          .end(NOOP_REPLY));
      return vertx.createHttpServer(new HttpServerOptions().setPort(port)).requestHandler(router).listen();
    }
  }

  /** The seed's design: the database decides, under row locks, for every activation. */
  static final class Dblock extends VerticleBase {
    private final int port;
    private final PgConnectOptions connect;
    private final int connections;
    private Pool pg;

    Dblock(int port, PgConnectOptions connect, int connections) {
      this.port = port;
      this.connect = connect;
      this.connections = connections;
    }

    @Override
    public Future<?> start() {
      // One pool shared by every instance, sized for the database rather than per event loop.
      pg = PgBuilder.pool()
          .with(new PoolOptions().setMaxSize(connections).setShared(true).setName("dblock"))
          .connectingTo(connect.setCachePreparedStatements(true))
          .using(vertx)
          .build();
      Router router = router(vertx);
      router.post("/api/tokens/activate").handler(this::activate);
      return vertx.createHttpServer(new HttpServerOptions().setPort(port)).requestHandler(router).listen();
    }

    private void activate(RoutingContext ctx) {
      UUID user;
      try {
        user = UUID.fromString(ctx.body().asJsonObject().getString("user_id"));
      } catch (RuntimeException e) {
        ctx.response().setStatusCode(400).end("{\"status\":\"bad_request\",\"message\":\"bad user_id\"}");
        return;
      }
      pg.withTransaction(conn -> conn.preparedQuery(DBLOCK_GRANT).execute(Tuple.of(user)).compose(granted -> {
        if (granted.size() == 0) {
          return Future.succeededFuture(granted);
        }
        Row row = granted.iterator().next();
        return conn.preparedQuery(DBLOCK_RECORD)
            .execute(Tuple.of(row.getUUID("id"), user, row.getOffsetDateTime("activated_at")))
            .map(granted);
      })).onComplete(result -> {
        if (result.failed()) {
          ctx.response().setStatusCode(500).end(new JsonObject().put("status", "internal_server_error")
              .put("message", "Failed to process request: " + result.cause().getMessage()).toBuffer());
          return;
        }
        RowSet<Row> rows = result.result();
        if (rows.size() == 0) {
          ctx.response().setStatusCode(500)
              .end("{\"status\":\"internal_server_error\",\"message\":\"No available tokens.\"}");
          return;
        }
        Row row = rows.iterator().next();
        ctx.json(new JsonObject().put("token_id", row.getUUID("id").toString()).put("user_id", user.toString()));
      });
    }
  }
}
