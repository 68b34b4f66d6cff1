package dev.tokenlease.m2m;

import java.time.Instant;
import java.util.Set;
import java.util.UUID;

/**
 * Who a valid access token speaks for: the client, its tenant, and the scopes granted to the token.
 * {@code admin} implies every other scope.
 */
public record Principal(UUID tokenId, String clientId, String tenantId, Set<String> scopes, Instant issuedAt,
    Instant expiresAt) {
  public static final String ADMIN = "admin";
  /** The scopes this service itself checks; an admin client may ask for any of them. */
  public static final Set<String> SERVICE_SCOPES =
      Set.of(ADMIN, "tokens:read", "tokens:write", "credentials:use", "metrics:read");

  public boolean allows(String scope) {
    return scopes.contains(ADMIN) || scopes.contains(scope);
  }

  public boolean isAdmin() {
    return scopes.contains(ADMIN);
  }
}
