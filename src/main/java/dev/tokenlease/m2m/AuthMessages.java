package dev.tokenlease.m2m;

import dev.tokenlease.m2m.AuthStore.Client;
import dev.tokenlease.platform.LocalRecordCodec;
import io.vertx.core.eventbus.EventBus;
import java.util.List;

/**
 * The M2M operations as local messages to {@link AuthVerticle}, one address each: the routes send
 * them through {@link AuthClient}; the verticle answers from {@link AuthService} on its own event
 * loop. Records travel by reference and never leave the process.
 */
final class AuthMessages {
  static final String AUTHENTICATE = "tokens.auth.authenticate";
  static final String ISSUE = "tokens.auth.issue";
  static final String REVOKE = "tokens.auth.revoke";
  static final String INTROSPECT = "tokens.auth.introspect";
  static final String REGISTER = "tokens.auth.register";
  static final String CLIENTS = "tokens.auth.clients";
  static final String CLIENT = "tokens.auth.client";
  static final String ROTATE_SECRET = "tokens.auth.rotate-secret";
  static final String DELETE = "tokens.auth.delete";
  static final String LIST_TOKENS = "tokens.auth.list-tokens";
  static final String AUDIT = "tokens.auth.audit";

  record Authenticate(String clientId, String secret, String alternative) {}

  /** {@code issuer}: the {@code iss} of a JWT access token (the public URL, or as the request named this service). */
  record Issue(Client client, List<String> scopes, String issuer) {}

  record Revoke(Client caller, String token) {}

  record Introspect(Client caller, String token) {}

  record Register(String name, String tenantId, List<String> scopes, Principal actor) {}

  record ListClients(int page, int limit) {}

  record GetClient(String clientId) {}

  record RotateSecret(String clientId, Principal actor) {}

  record Delete(String clientId, Principal actor) {}

  record ListTokens(Principal caller, String clientId, Boolean active, int page, int limit) {}

  record ListAudit(String event, int page, int limit) {}

  private AuthMessages() {}

  /** Requests and answers by reference; once per Vert.x instance, before the routes send any. */
  static void registerCodecs(EventBus bus) {
    LocalRecordCodec.registerAll(bus, Authenticate.class, Issue.class, Revoke.class, Introspect.class, Register.class,
        ListClients.class, GetClient.class, RotateSecret.class, Delete.class, ListTokens.class, ListAudit.class,
        Client.class, Principal.class, AuthService.Issued.class, AuthService.Registered.class, AuthStore.Page.class);
  }
}
