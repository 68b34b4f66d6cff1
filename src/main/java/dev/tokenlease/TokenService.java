package dev.tokenlease;

import dev.tokenlease.lease.bus.ClusterNode;
import dev.tokenlease.lease.bus.PoolClient;
import dev.tokenlease.lease.bus.PoolForwarding;
import dev.tokenlease.lease.bus.PoolMessages;
import dev.tokenlease.lease.bus.PoolVerticle;
import dev.tokenlease.lease.routes.ChangeStream;
import dev.tokenlease.lease.routes.TokenRoutes;
import dev.tokenlease.m2m.Auth;
import dev.tokenlease.m2m.AuthVerticle;
import dev.tokenlease.m2m.Guard;
import dev.tokenlease.m2m.M2mRoutes;
import dev.tokenlease.m2m.OAuthRoutes;
import dev.tokenlease.ops.DashboardRoutes;
import dev.tokenlease.ops.OpsRoutes;
import dev.tokenlease.platform.ClusterSupport;
import dev.tokenlease.platform.metrics.Metrics;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.config.ConfigException;
import dev.tokenlease.platform.db.EmbeddedDatabase;
import dev.tokenlease.platform.db.Migrations;
import dev.tokenlease.platform.http.ApiDocs;
import dev.tokenlease.platform.http.ApiRoutes;
import dev.tokenlease.platform.http.ErrorShape;
import dev.tokenlease.platform.http.HttpApiVerticle;
import dev.tokenlease.vault.CredentialRoutes;
import dev.tokenlease.vault.CredentialsVerticle;
import dev.tokenlease.vault.VaultCipher;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.pgclient.PgConnectOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running service: its database (embedded or configured), migrations, and the verticles,
 * deployed in order (pool with its persistence, vault, auth, HTTP) and undeployed in reverse so that every request in
 * flight is answered and every change is written before the process ends.
 */
public final class TokenService implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(TokenService.class);
  private static final Duration STEP_TIMEOUT = Duration.ofSeconds(60);

  /** The error body shape of each API that does not use the seed's {@code {status, message}}. */
  static final Map<String, ErrorShape> ERROR_SHAPES =
      Map.of(OAuthRoutes.PREFIX, OAuthRoutes.ERRORS, M2mRoutes.PREFIX, M2mRoutes.ERRORS);

  private final Vertx vertx;
  private final EmbeddedDatabase embedded;
  private final List<String> deployments;
  private final int port;
  private final ChangeStream.Shared events;
  private boolean closed;

  private TokenService(Vertx vertx, EmbeddedDatabase embedded, List<String> deployments, int port,
      ChangeStream.Shared events) {
    this.vertx = vertx;
    this.embedded = embedded;
    this.deployments = deployments;
    this.port = port;
    this.events = events;
  }

  /** Starts everything and returns once the HTTP port accepts requests. Blocks the caller. */
  public static TokenService start(AppConfig config) throws Exception {
    checkVaultKeyset(config.vault());
    EmbeddedDatabase embedded = config.pgUrl() == null ? EmbeddedDatabase.start(config.dataDir()) : null;
    Vertx vertx = null;
    List<String> deployments = new ArrayList<>();
    try {
      PgConnectOptions connect = PgConnectOptions.fromUri(embedded != null ? embedded.url() : config.pgUrl());
      Migrations.migrate(connect);
      Metrics metrics = new Metrics();
      vertx = await(ClusterSupport.vertx(config.cluster(), metrics));
      PoolMessages.registerCodecs(vertx.eventBus());
      if (config.cluster().enabled()) {
        // Every node serves the whole API; the pools live on whichever node owns them now.
        PoolForwarding forwarding = PoolForwarding.enable(vertx, config.cluster().forwardTimeout());
        deployments.add(await(vertx.deployVerticle(new ClusterNode(config, connect, metrics.registry(), forwarding))));
      } else {
        deployments.add(await(vertx.deployVerticle(new PoolVerticle(config, connect, metrics.registry()))));
      }
      deployments.add(await(vertx.deployVerticle(new CredentialsVerticle(config.vault(), connect))));
      Auth auth = new Auth(config.auth(), java.time.Clock.systemUTC());
      deployments.add(await(vertx.deployVerticle(new AuthVerticle(auth, connect, config.vault().keysetJson()))));
      ApiDocs docs = ApiDocs.load();
      ChangeStream.Shared events = new ChangeStream.Shared(config.events());
      List<HttpApiVerticle> http = new ArrayList<>();
      deployments.add(await(vertx.deployVerticle(() -> {
        HttpApiVerticle verticle = new HttpApiVerticle(config.httpPort(), config.tls(), apis(auth, events, docs, metrics),
            ERROR_SHAPES);
        synchronized (http) {
          http.add(verticle);
        }
        return verticle;
      }, new DeploymentOptions().setInstances(config.httpInstances()))));
      int port = http.get(0).actualPort();
      LOG.info("Token service listening on port {} ({})", port, config.tls() == null ? "HTTP" : "HTTPS, HTTP/2 by ALPN");
      if (config.tls() == null) {
        // The listener takes every interface, loopback or not.
        LOG.warn("The OAuth endpoints (/oauth/*) are served over plain HTTP on every interface: client secrets and "
            + "access tokens cross the network in clear unless TLS is in front; set {} and {} to serve HTTPS",
            AppConfig.TLS_CERT_FILE, AppConfig.TLS_KEY_FILE);
      }
      return new TokenService(vertx, embedded, deployments, port, events);
    } catch (Exception | Error e) {
      new TokenService(vertx, embedded, deployments, -1, null).close();
      throw e;
    }
  }

  /** Every API the HTTP verticles serve, for one verticle instance (each has its own guard and change ring). */
  static List<ApiRoutes> apis(Auth auth, ChangeStream.Shared events, ApiDocs docs, Metrics metrics) {
    Guard guard = new Guard(auth);
    return List.of(
        (vx, router, declared) -> new OpsRoutes(vx, new PoolClient(vx), metrics, declared, guard).mount(router),
        (vx, router, declared) -> new TokenRoutes(new PoolClient(vx), declared, guard).mount(router),
        (vx, router, declared) -> new ChangeStream(vx, new PoolClient(vx), declared, guard, events).mount(router),
        (vx, router, declared) -> new CredentialRoutes(vx.eventBus(), declared, guard).mount(router),
        (vx, router, declared) -> new OAuthRoutes(auth, vx.eventBus(), declared).mount(router),
        (vx, router, declared) -> new M2mRoutes(auth, vx.eventBus(), declared, guard).mount(router),
        (vx, router, declared) -> new DashboardRoutes(vx, declared).mount(router),
        docs);
  }

  /** A keyset that Tink cannot read stops start-up like any bad setting, without echoing it. */
  private static void checkVaultKeyset(AppConfig.VaultConfig vault) {
    if (vault.keysetJson() == null) {
      return;
    }
    try {
      VaultCipher.fromKeysetJson(vault.keysetJson());
    } catch (java.security.GeneralSecurityException | RuntimeException e) {
      throw new ConfigException(AppConfig.VAULT_KEYSET + " / " + AppConfig.VAULT_KEYSET_FILE + ": " + AppConfig.NOT_A_KEYSET);
    }
  }

  public int port() {
    return port;
  }

  /** Live-changes clients disconnected for not keeping up, since start. */
  public long droppedStreams() {
    return events.dropped();
  }

  /** The service's Vert.x instance, for callers that use the event-bus API in the same process. */
  public Vertx vertx() {
    return vertx;
  }

  /** Stops taking requests, answers those in flight, writes every pending change, then exits. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (vertx != null) {
      for (int i = deployments.size() - 1; i >= 0; i--) {
        try {
          await(vertx.undeploy(deployments.get(i)));
        } catch (Exception e) {
          LOG.error("Undeploying {} failed: {}", deployments.get(i), e.getMessage());
        }
      }
      PoolForwarding.disable(vertx);
      try {
        await(vertx.close());
      } catch (Exception e) {
        LOG.warn("Closing Vert.x failed: {}", e.getMessage());
      }
    }
    if (embedded != null) {
      try {
        embedded.close();
      } catch (Exception e) {
        LOG.warn("Stopping the embedded PostgreSQL failed: {}", e.getMessage());
      }
    }
  }

  private static <T> T await(Future<T> future) throws Exception {
    try {
      return future.toCompletionStage().toCompletableFuture().get(STEP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof Exception cause) {
        throw cause;
      }
      throw e;
    }
  }
}
