package dev.tokenlease.m2m;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonObject;
import io.vertx.pgclient.PgConnectOptions;
import io.vertx.sqlclient.Pool;
import dev.tokenlease.platform.LocalBus;
import dev.tokenlease.platform.db.SharedPool;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Owns the M2M capability: its connection pool, the bootstrap admin client from configuration, the
 * in-memory set of live tokens (loaded from PostgreSQL, then kept current by this process's own
 * changes and those other nodes publish), and every operation, each answered on this verticle's
 * event loop at its {@link AuthMessages} address. A timer purges expired tokens and idle rate buckets.
 */
public final class AuthVerticle extends VerticleBase {
  private static final Logger LOG = LoggerFactory.getLogger(AuthVerticle.class);
  private static final long HOUSEKEEPING_MS = 30_000;

  private final Auth auth;
  private final PgConnectOptions connectOptions;
  private Pool pg;
  private MessageConsumer<JsonObject> changes;
  private final List<MessageConsumer<?>> operations = new ArrayList<>();
  private long timer = -1;
  private long keyTimer = -1;
  private boolean refreshing;

  private final String sealingKeysetJson;

  /** @param sealingKeysetJson the vault's keyset, which seals the JWT signing keys at rest, or null */
  public AuthVerticle(Auth auth, PgConnectOptions connectOptions, String sealingKeysetJson) {
    this.auth = auth;
    this.connectOptions = connectOptions;
    this.sealingKeysetJson = sealingKeysetJson;
  }

  @Override
  public Future<?> start() {
    pg = SharedPool.handle(vertx, connectOptions);
    AuthStore store = new AuthStore(pg);
    SigningKeys keys = new SigningKeys(auth.config().jwt(), auth.config().tokenTtl(), pg, sealingKeysetJson);
    AuthService service = new AuthService(auth, store, vertx.eventBus(), keys);
    changes = vertx.eventBus().consumer(AuthService.CHANGES, message -> service.apply(message.body()));
    AuthMessages.registerCodecs(vertx.eventBus());
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
    Future<Void> signing = keys.maintain(now).compose(jwks -> {
      auth.publishKeys(jwks);
      if (auth.config().jwt().enabled() && !keys.canSign(now)) {
        return Future.failedFuture(new IllegalStateException("TOKENS_M2M_TOKEN_FORMAT=jwt: the active signing key "
            + "cannot be opened (sealed with a vault key that the configured keyset lacks?)"));
      }
      if (auth.config().jwt().enabled()) {
        LOG.info("Access tokens are JWTs (RFC 9068), signed with {} keys rotated every {}; private keys are {}",
            SigningKeys.ALGORITHM, auth.config().jwt().keyRotation(), keys.sealed()
                ? "sealed with the vault keyset" : "kept unsealed in the database (set TOKENS_VAULT_KEYSET_FILE to seal them)");
      }
      // With opaque tokens too: keys made while JWTs were issued stay published until their tokens expire.
      keyTimer = vertx.setPeriodic(keys.period().toMillis(), id -> refreshKeys(keys));
      return Future.succeededFuture();
    });
    return bootstrap.compose(v -> signing).compose(v -> changes.completion()).compose(v -> store.loadLive(now)).map(live -> {
      live.forEach(token -> auth.tokens().put(token.hashHex(), token.principal()));
      serve(service);
      timer = vertx.setPeriodic(HOUSEKEEPING_MS, id -> housekeeping());
      LOG.info("Loaded {} live M2M access token(s); authentication of the pool API is {}", live.size(),
          auth.config().required() ? "required" : "off");
      return null;
    });
  }

  /** Starts answering the routes' requests, once the live tokens are known. */
  private void serve(AuthService service) {
    serve(AuthMessages.AUTHENTICATE, (AuthMessages.Authenticate r) -> service.authenticate(r.clientId(), r.secret(), r.alternative()));
    serve(AuthMessages.ISSUE, (AuthMessages.Issue r) -> service.issue(r.client(), r.scopes(), r.issuer()));
    serve(AuthMessages.REVOKE, (AuthMessages.Revoke r) -> service.revoke(r.caller(), r.token()));
    serve(AuthMessages.INTROSPECT, (AuthMessages.Introspect r) -> Future.succeededFuture(service.introspect(r.caller(), r.token())));
    serve(AuthMessages.REGISTER, (AuthMessages.Register r) -> service.register(r.name(), r.tenantId(), r.scopes(), r.actor()));
    serve(AuthMessages.CLIENTS, (AuthMessages.ListClients r) -> service.clients(r.page(), r.limit()));
    serve(AuthMessages.CLIENT, (AuthMessages.GetClient r) -> service.client(r.clientId()));
    serve(AuthMessages.ROTATE_SECRET, (AuthMessages.RotateSecret r) -> service.rotateSecret(r.clientId(), r.actor()));
    serve(AuthMessages.DELETE, (AuthMessages.Delete r) -> service.delete(r.clientId(), r.actor()));
    serve(AuthMessages.LIST_TOKENS, (AuthMessages.ListTokens r) -> service.listTokens(r.caller(), r.clientId(), r.active(), r.page(), r.limit()));
    serve(AuthMessages.AUDIT, (AuthMessages.ListAudit r) -> service.audit(r.event(), r.page(), r.limit()));
  }

  private <Q, R> void serve(String address, Function<Q, Future<R>> handler) {
    operations.add(LocalBus.serve(vertx.eventBus(), address, handler));
  }

  /** Keeps the signing keys current; a failure leaves the loaded keys in use and is retried next period. */
  private void refreshKeys(SigningKeys keys) {
    if (refreshing) {
      return;
    }
    refreshing = true;
    keys.maintain(auth.clock().instant()).onComplete(result -> {
      refreshing = false;
      if (result.succeeded()) {
        auth.publishKeys(result.result());
      } else {
        LOG.warn("JWT signing keys could not be refreshed: {}", result.cause().getMessage());
      }
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
    if (keyTimer >= 0) {
      vertx.cancelTimer(keyTimer);
    }
    List<Future<Void>> unregistering = new ArrayList<>();
    operations.forEach(consumer -> unregistering.add(consumer.unregister()));
    if (changes != null) {
      unregistering.add(changes.unregister());
    }
    Future<?> unregistered = Future.join(unregistering);
    return unregistered.eventually(() -> pg == null ? Future.succeededFuture() : pg.close());
  }
}
