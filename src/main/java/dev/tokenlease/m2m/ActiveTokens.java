package dev.tokenlease.m2m;

import java.time.Instant;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Every access token that can still be used, by the hex SHA-256 of its value: checking a bearer
 * token is a hash and a map lookup, never a database round trip. Shared by all HTTP verticles of
 * the process; revocations remove entries before they are acknowledged, so they take effect at once.
 * Expired entries are refused on lookup and purged periodically.
 */
public final class ActiveTokens {
  private final Map<String, Principal> byHash = new ConcurrentHashMap<>();
  /** Clients deleted while this process runs: a token issued to one of them is never put back. */
  private final java.util.Set<String> deletedClients = ConcurrentHashMap.newKeySet();

  /** The principal behind a presented token, or null when it is unknown, revoked or expired. */
  public Principal find(String token, Instant now) {
    Principal principal = byHash.get(Secrets.hex(Secrets.hash(token)));
    return principal == null || !now.isBefore(principal.expiresAt()) ? null : principal;
  }

  void put(String hashHex, Principal principal) {
    byHash.put(hashHex, principal);
    if (deletedClients.contains(principal.clientId())) {
      // A deletion raced with this issue; its revocation in the database covers the token too.
      byHash.remove(hashHex);
    }
  }

  void remove(String hashHex) {
    byHash.remove(hashHex);
  }

  void removeAll(Collection<String> hashHexes) {
    hashHexes.forEach(byHash::remove);
  }

  void removeClient(String clientId) {
    deletedClients.add(clientId);
    byHash.values().removeIf(p -> p.clientId().equals(clientId));
  }

  int purgeExpired(Instant now) {
    int before = byHash.size();
    byHash.values().removeIf(p -> !now.isBefore(p.expiresAt()));
    return before - byHash.size();
  }
}
