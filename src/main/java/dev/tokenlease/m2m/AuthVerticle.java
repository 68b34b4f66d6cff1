package dev.tokenlease.m2m;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgBuilder;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import io.vertx.sqlclient.PoolOptions;
import java.time.Instant;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts the M2M capability: its connection pool, the bootstrap admin client from configuration,
 * and the in-memory set of live tokens (loaded from PostgreSQL, then kept current by this process's
 * own changes and those other nodes publish). A timer purges expired tokens and idle rate buckets.
 */
public final class AuthVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(AuthVerticle.class);
  private static final long HOUSEKEEPING_MS = 30_000;

  private final Auth auth;
  private final PgConnectOptions connectOptions;
  private Pool pg;
  private MessageConsumer<JsonObject> changes;
  private long timer = -1;

  public AuthVerticle(Auth auth, PgConnectOptions connectOptions) {
    this.auth = auth;
    this.connectOptions = connectOptions;
  }

  @Override
  public Future<?> start() {
    pg = PgBuilder.pool().with(new PoolOptions().setMaxSize(2)).connectingTo(connectOptions).using(vertx).build();
    AuthStore store = new AuthStore(pg);
    AuthService service = new AuthService(auth, store, vertx.eventBus());
    changes = vertx.eventBus().consumer(AuthService.CHANGES, message -> service.apply(message.body()));
    Instant now = auth.clock().instant();
    String adminId = auth.config().adminClientId();
    byte[] adminHash = adminId == null ? null : Secrets.hash(auth.config().adminClientSecret());
    Future<Integer> bootstrap = store.bootstrap(adminId, adminHash, now).onSuccess(revoked -> {
      if (revoked > 0) {
        LOG.info("Revoked {} token(s) of a replaced or removed bootstrap admin", revoked);
      }
    });
    if (adminId != null) {
      LOG.info("Bootstrap admin client '{}' is configured", adminId);
    } else if (auth.config().required()) {
      LOG.warn("Authentication is required but no admin client is configured: set TOKENS_ADMIN_CLIENT_ID and "
          + "TOKENS_ADMIN_CLIENT_SECRET to register clients");
    } else {
      LOG.info("No bootstrap admin client configured (TOKENS_ADMIN_CLIENT_ID / TOKENS_ADMIN_CLIENT_SECRET unset)");
    }
    return bootstrap.compose(v -> changes.completion()).compose(v -> store.loadLive(now)).map(live -> {
      live.forEach(token -> auth.tokens().put(token.hashHex(), token.principal()));
      auth.attach(service);
      timer = vertx.setPeriodic(HOUSEKEEPING_MS, id -> housekeeping());
      LOG.info("Loaded {} live M2M access token(s); authentication of the pool API is {}", live.size(),
          auth.config().required() ? "required" : "off");
      return null;
    });
  }

  private void housekeeping() {
    auth.tokens().purgeExpired(auth.clock().instant());
    auth.general().sweep();
    auth.oauth().sweep();
  }

  @Override
  public Future<?> stop() {
    if (timer >= 0) {
      vertx.cancelTimer(timer);
    }
    Future<Void> unregistered = changes == null ? Future.succeededFuture() : changes.unregister();
    return unregistered.eventually(() -> pg == null ? Future.succeededFuture() : pg.close());
  }
}
