package dev.tokenlease.m2m;

import dev.tokenlease.m2m.AuthStore.Client;
import dev.tokenlease.m2m.AuthStore.StoredToken;
import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The M2M operations: client registration and authentication, token issue and revocation, and the
 * audited admin listing. Every change to the set of live tokens is applied to this process's
 * {@link ActiveTokens} before it is acknowledged, and published on {@link #CHANGES} (hashes only)
 * so that other nodes of a cluster apply it too. Nothing here logs a secret or a token.
 */
final class AuthService {
  /** Published changes to the live token set: {@code {type: issued|revoked, ...}}. */
  static final String CHANGES = "auth.m2m.changes";
  /** Issuing a token beyond this many live ones per client revokes the client's oldest. */
  static final int MAX_LIVE_TOKENS_PER_CLIENT = 100;

  private static final Logger LOG = LoggerFactory.getLogger(AuthService.class);
  /** Compared against when the client id is unknown, so that both paths hash and compare. */
  private static final byte[] DUMMY_HASH = Secrets.hash(Secrets.generate());

  record Issued(String accessToken, StoredToken token) {}

  record Registered(Client client, String secret) {}

  private final Auth auth;
  private final AuthStore store;
  private final EventBus bus;
  private final SigningKeys keys;

  AuthService(Auth auth, AuthStore store, EventBus bus, SigningKeys keys) {
    this.auth = auth;
    this.store = store;
    this.bus = bus;
    this.keys = keys;
  }

  Instant now() {
    return auth.clock().instant();
  }

  /**
   * The client if the secret (or its alternative spelling, when not null) is right, else null; the
   * same work whether or not the client exists.
   */
  Future<Client> authenticate(String clientId, String secret, String alternative) {
    return store.findClient(clientId).map(client -> {
      byte[] stored = client == null ? DUMMY_HASH : client.secretHash();
      boolean matches = Secrets.matches(stored, secret);
      if (alternative != null) {
        matches |= Secrets.matches(stored, alternative);
      }
      if (client == null) {
        // An unknown "client id" may be a secret sent in the wrong field: never log it.
        LOG.warn("Failed client authentication: unknown client id");
        return null;
      }
      if (!matches) {
        LOG.warn("Failed client authentication for client {}", clientId);
        return null;
      }
      return client;
    });
  }

  /**
   * A new access token for the client: opaque (256 random bits), or with
   * {@code TOKENS_M2M_TOKEN_FORMAT=jwt} a JWT signed for {@code issuer}. Either way it is stored and
   * checked by the hash of its value, so revocation and introspection work the same for both.
   */
  Future<Issued> issue(Client client, List<String> scopes, String issuer) {
    Instant now = now();
    UUID id = UUID.randomUUID();
    Instant expiresAt = now.plus(auth.config().tokenTtl());
    String value;
    if (auth.config().jwt().enabled()) {
      try {
        value = keys.sign(new StoredToken(id, null, client.clientId(), client.tenantId(), scopes, now, expiresAt), issuer);
      } catch (RuntimeException e) {
        return Future.failedFuture(e);
      }
    } else {
      value = Secrets.generate();
    }
    byte[] hash = Secrets.hash(value);
    StoredToken token = new StoredToken(id, Secrets.hex(hash), client.clientId(), client.tenantId(), scopes, now,
        expiresAt);
    return store.insertToken(token, hash, MAX_LIVE_TOKENS_PER_CLIENT).compose(evicted -> {
      if (evicted == null) {
        // Deleted between authentication and issue.
        return Future.failedFuture(OAuthRoutes.oauthError(401, "invalid_client", "Client authentication failed."));
      }
      auth.tokens().put(token.hashHex(), token.principal());
      revoked(evicted);
      bus.publish(CHANGES, new JsonObject().put("node", auth.node()).put("type", "issued").put("hash", token.hashHex())
          .put("id", token.id().toString()).put("clientId", token.clientId()).put("tenantId", token.tenantId())
          .put("scopes", new JsonArray(token.scopes())).put("issuedAt", token.createdAt().toEpochMilli()).put("expiresAt", token.expiresAt().toEpochMilli()));
      LOG.info("Issued token {} to client {} (scopes {})", token.id(), client.clientId(), scopes);
      Issued issued = new Issued(value, token);
      if (evicted.isEmpty()) {
        return Future.succeededFuture(issued);
      }
      return store.audit("M2M_TOKEN_REVOKED", "low", client.clientId(), client.tenantId(),
          new JsonObject().put("clientId", client.clientId()).put("count", evicted.size())
              .put("reason", "more than " + MAX_LIVE_TOKENS_PER_CLIENT + " live tokens"), now).map(issued);
    });
  }

  /**
   * RFC 7009: revokes a token the caller owns (an admin may revoke any). An unknown, expired or
   * foreign token changes nothing and is not reported, so the answer reveals nothing.
   */
  Future<Void> revoke(Client caller, String token) {
    Principal principal = auth.tokens().find(token, now());
    if (principal == null) {
      return Future.succeededFuture();
    }
    if (!principal.clientId().equals(caller.clientId()) && !caller.scopes().contains(Principal.ADMIN)) {
      LOG.warn("Client {} asked to revoke token {} of client {}: ignored", caller.clientId(), principal.tokenId(),
          principal.clientId());
      return Future.succeededFuture();
    }
    Instant now = now();
    String hashHex = Secrets.hex(Secrets.hash(token));
    return store.revokeToken(principal.tokenId(), now).compose(done -> {
      revoked(List.of(hashHex));
      LOG.info("Revoked token {} of client {}", principal.tokenId(), principal.clientId());
      return store.audit("M2M_TOKEN_REVOKED", "medium", caller.clientId(), principal.tenantId(),
          new JsonObject().put("tokenId", principal.tokenId().toString()).put("clientId", principal.clientId()), now);
    });
  }

  /** RFC 7662: the token's metadata when it is live and the caller may see it, else null. */
  Principal introspect(Client caller, String token) {
    Principal principal = auth.tokens().find(token, now());
    if (principal == null) {
      return null;
    }
    boolean visible = caller.scopes().contains(Principal.ADMIN) || principal.tenantId().equals(caller.tenantId());
    return visible ? principal : null;
  }

  Future<Registered> register(String name, String tenantId, List<String> scopes, Principal actor) {
    Instant now = now();
    String secret = Secrets.generate();
    Client client = new Client(Secrets.identifier("m2m_"), name, tenantId, List.copyOf(scopes), Secrets.hash(secret),
        now, now, false);
    return store.insertClient(client)
        .compose(v -> store.audit("M2M_CLIENT_CREATED", "medium", actor.clientId(), tenantId,
            new JsonObject().put("clientId", client.clientId()).put("scopes", new JsonArray(client.scopes())), now))
        .map(v -> {
          LOG.info("Registered client {} for tenant {} (scopes {})", client.clientId(), tenantId, scopes);
          return new Registered(client, secret);
        });
  }

  Future<AuthStore.Page<Client>> clients(int page, int limit) {
    return store.listClients(page, limit);
  }

  Future<Client> client(String clientId) {
    return store.findClient(clientId);
  }

  /** The new secret, or null when there is no such client. */
  Future<String> rotateSecret(String clientId, Principal actor) {
    Instant now = now();
    String secret = Secrets.generate();
    return store.rotateSecret(clientId, Secrets.hash(secret), now).compose(tenant -> {
      if (tenant == null) {
        return Future.succeededFuture(null);
      }
      LOG.info("Rotated the secret of client {}", clientId);
      return store.audit("M2M_CLIENT_SECRET_ROTATED", "high", actor.clientId(), tenant,
          new JsonObject().put("clientId", clientId), now).map(secret);
    });
  }

  /** The number of tokens revoked with the client, or null when there was no such client. */
  Future<Integer> delete(String clientId, Principal actor) {
    Instant now = now();
    return store.deleteClient(clientId, now).compose(deleted -> {
      if (deleted == null) {
        return Future.succeededFuture(null);
      }
      List<String> hashes = deleted.revokedHashes();
      auth.tokens().removeClient(clientId);
      revoked(hashes);
      LOG.info("Deleted client {} and revoked {} token(s)", clientId, hashes.size());
      return store.audit("M2M_CLIENT_DELETED", "high", actor.clientId(), deleted.tenantId(),
          new JsonObject().put("clientId", clientId).put("revokedTokens", hashes.size()), now).map(hashes.size());
    });
  }

  /** The seed's listing; non-admin callers see their own tenant only. Every call is audited. */
  Future<AuthStore.Page<AuthStore.Listed>> listTokens(Principal caller, String clientId, Boolean active, int page,
      int limit) {
    Instant now = now();
    String tenant = caller.isAdmin() ? null : caller.tenantId();
    return store.listTokens(tenant, clientId, active, page, limit, now).compose(result -> {
      JsonObject filters = new JsonObject().put("clientId", clientId).put("active", active);
      JsonObject details = new JsonObject().put("filters", filters).put("resultCount", result.items().size())
          .put("total", result.total()).put("page", page).put("limit", limit);
      return store.audit("M2M_TOKENS_LISTED", "low", caller.clientId(), caller.tenantId(), details, now).map(result);
    });
  }

  Future<AuthStore.Page<AuthStore.AuditEvent>> audit(String event, int page, int limit) {
    return store.listAudit(event, page, limit);
  }

  private static Set<String> scopes(JsonArray array) {
    Set<String> scopes = new java.util.HashSet<>();
    array.forEach(scope -> scopes.add(String.valueOf(scope)));
    return Set.copyOf(scopes);
  }

  /** Drops revoked tokens here at once and tells the other nodes. */
  private void revoked(List<String> hashes) {
    if (hashes.isEmpty()) {
      return;
    }
    auth.tokens().removeAll(hashes);
    bus.publish(CHANGES, new JsonObject().put("node", auth.node()).put("type", "revoked").put("hashes", new JsonArray(hashes)));
  }

  /**
   * Applies a change published by another node. This node's own changes were applied before they
   * were published; applying them again could bring back a token revoked in between.
   */
  void apply(JsonObject change) {
    if (auth.node().equals(change.getString("node"))) {
      return;
    }
    switch (change.getString("type", "")) {
      case "issued" -> auth.tokens().put(change.getString("hash"), new Principal(
          UUID.fromString(change.getString("id")), change.getString("clientId"), change.getString("tenantId"),
          scopes(change.getJsonArray("scopes")), Instant.ofEpochMilli(change.getLong("issuedAt")),
          Instant.ofEpochMilli(change.getLong("expiresAt"))));
      case "revoked" -> change.getJsonArray("hashes").forEach(h -> auth.tokens().remove((String) h));
      default -> LOG.warn("Ignoring an unknown auth change type '{}'", change.getString("type"));
    }
  }
}
