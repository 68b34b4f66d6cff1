package dev.tokenlease.m2m;

import dev.tokenlease.m2m.AuthStore.Client;
import dev.tokenlease.platform.LocalBus;
import io.vertx.core.Future;
import io.vertx.core.eventbus.EventBus;
import java.util.List;

/**
 * The M2M operations as the routes see them: each is a request to {@link AuthVerticle} over the
 * local event bus ({@link LocalBus}), answered on the caller's context; a refusal is the
 * {@link dev.tokenlease.platform.ApiException} the service raised.
 */
final class AuthClient {
  private final EventBus bus;

  AuthClient(EventBus bus) {
    this.bus = bus;
  }

  /** The client when the secret (or its alternative spelling) is right, else null. */
  Future<Client> authenticate(String clientId, String secret, String alternative) {
    return LocalBus.request(bus, AuthMessages.AUTHENTICATE, new AuthMessages.Authenticate(clientId, secret, alternative));
  }

  Future<AuthService.Issued> issue(Client client, List<String> scopes, String issuer) {
    return LocalBus.request(bus, AuthMessages.ISSUE, new AuthMessages.Issue(client, scopes, issuer));
  }

  Future<Void> revoke(Client caller, String token) {
    return LocalBus.request(bus, AuthMessages.REVOKE, new AuthMessages.Revoke(caller, token));
  }

  /** The token's metadata when it is live and the caller may see it, else null. */
  Future<Principal> introspect(Client caller, String token) {
    return LocalBus.request(bus, AuthMessages.INTROSPECT, new AuthMessages.Introspect(caller, token));
  }

  Future<AuthService.Registered> register(String name, String tenantId, List<String> scopes, Principal actor) {
    return LocalBus.request(bus, AuthMessages.REGISTER, new AuthMessages.Register(name, tenantId, scopes, actor));
  }

  Future<AuthStore.Page<Client>> clients(int page, int limit) {
    return LocalBus.request(bus, AuthMessages.CLIENTS, new AuthMessages.ListClients(page, limit));
  }

  /** The client, or null when there is none. */
  Future<Client> client(String clientId) {
    return LocalBus.request(bus, AuthMessages.CLIENT, new AuthMessages.GetClient(clientId));
  }

  /** The new secret, or null when there is no such client. */
  Future<String> rotateSecret(String clientId, Principal actor) {
    return LocalBus.request(bus, AuthMessages.ROTATE_SECRET, new AuthMessages.RotateSecret(clientId, actor));
  }

  /** The number of tokens revoked with the client, or null when there was no such client. */
  Future<Integer> delete(String clientId, Principal actor) {
    return LocalBus.request(bus, AuthMessages.DELETE, new AuthMessages.Delete(clientId, actor));
  }

  Future<AuthStore.Page<AuthStore.Listed>> listTokens(Principal caller, String clientId, Boolean active, int page,
      int limit) {
    return LocalBus.request(bus, AuthMessages.LIST_TOKENS, new AuthMessages.ListTokens(caller, clientId, active, page, limit));
  }

  Future<AuthStore.Page<AuthStore.AuditEvent>> audit(String event, int page, int limit) {
    return LocalBus.request(bus, AuthMessages.AUDIT, new AuthMessages.ListAudit(event, page, limit));
  }
}
