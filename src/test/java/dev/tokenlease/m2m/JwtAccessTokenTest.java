package dev.tokenlease.m2m;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.proc.DefaultJOSEObjectTypeVerifier;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.nimbusds.jwt.proc.BadJWTException;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import com.nimbusds.oauth2.sdk.ClientCredentialsGrant;
import com.nimbusds.oauth2.sdk.Scope;
import com.nimbusds.oauth2.sdk.TokenIntrospectionRequest;
import com.nimbusds.oauth2.sdk.TokenIntrospectionResponse;
import com.nimbusds.oauth2.sdk.TokenRequest;
import com.nimbusds.oauth2.sdk.TokenResponse;
import com.nimbusds.oauth2.sdk.TokenRevocationRequest;
import com.nimbusds.oauth2.sdk.as.AuthorizationServerMetadata;
import com.nimbusds.oauth2.sdk.auth.ClientSecretBasic;
import com.nimbusds.oauth2.sdk.auth.Secret;
import com.nimbusds.oauth2.sdk.id.ClientID;
import com.nimbusds.oauth2.sdk.id.Issuer;
import com.nimbusds.oauth2.sdk.token.AccessToken;
import dev.tokenlease.support.Eventually;
import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.TestDatabase;
import dev.tokenlease.vault.VaultCipher;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * JWT access tokens (RFC 9068) as a resource server sees them: discovered through the metadata,
 * verified offline against the JWK Set with Nimbus JOSE+JWT, keys rotated with overlap, kept
 * across restarts, sealed with the vault keyset; revocation still answers through introspection.
 */
@DisplayName("JWT access tokens")
class JwtAccessTokenTest extends FreshDatabase {
  private static final String ADMIN = "jwt-admin";
  private static final String SECRET = "0123456789abcdef0123456789abcdef-secret";
  private static final ClientSecretBasic CREDENTIALS = new ClientSecretBasic(new ClientID(ADMIN), new Secret(SECRET));

  private JsonObject jwt() {
    return new JsonObject().put("TOKENS_ADMIN_CLIENT_ID", ADMIN).put("TOKENS_ADMIN_CLIENT_SECRET", SECRET)
        .put("TOKENS_AUTH_REQUIRED", true).put("TOKENS_M2M_TOKEN_FORMAT", "jwt");
  }

  private AccessToken token(URI endpoint, String scope) throws Exception {
    TokenResponse issued = TokenResponse.parse(new TokenRequest(endpoint, CREDENTIALS, new ClientCredentialsGrant(),
        new Scope(scope)).toHTTPRequest().send());
    assertThat(issued.indicatesSuccess()).as("%s", issued).isTrue();
    return issued.toSuccessResponse().getTokens().getAccessToken();
  }

  private static DefaultJWTProcessor<SecurityContext> verifier(JWKSource<SecurityContext> keys, String issuer) {
    DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();
    processor.setJWSTypeVerifier(new DefaultJOSEObjectTypeVerifier<>(new JOSEObjectType("at+jwt")));
    processor.setJWSKeySelector(new JWSVerificationKeySelector<>(JWSAlgorithm.ES256, keys));
    processor.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>(issuer,
        new JWTClaimsSet.Builder().issuer(issuer).build(), Set.of("sub", "client_id", "iat", "exp", "jti", "scope")));
    return processor;
  }

  private JWKSet keySet() throws Exception {
    return JWKSet.parse(service.http().get("/oauth/jwks").raw());
  }

  private String kid(String jwt) throws Exception {
    return SignedJWT.parse(jwt).getHeader().getKeyID();
  }

  @Test
  @DisplayName("discovered by Nimbus, verified offline against the JWKS, accepted by the API; revoked: introspection says so")
  void verifiedOffline() throws Exception {
    int port = startService(jwt()).port();
    Issuer issuer = new Issuer("http://localhost:" + port);
    AuthorizationServerMetadata metadata = AuthorizationServerMetadata.resolve(issuer);
    assertThat(metadata.getJWKSetURI()).isEqualTo(URI.create(issuer + "/oauth/jwks"));

    AccessToken token = token(metadata.getTokenEndpointURI(), "tokens:read");
    JWTClaimsSet claims = verifier(JWKSourceBuilder.create(metadata.getJWKSetURI().toURL()).build(), issuer.getValue())
        .process(token.getValue(), null);
    assertThat(claims.getSubject()).isEqualTo(ADMIN);
    assertThat(claims.getStringClaim("client_id")).isEqualTo(ADMIN);
    assertThat(claims.getStringClaim("scope")).isEqualTo("tokens:read");
    assertThat(claims.getStringClaim("tenant_id")).isEqualTo("system");
    assertThat(claims.getAudience()).containsExactly(issuer.getValue());
    assertThat(Duration.between(claims.getIssueTime().toInstant(), claims.getExpirationTime().toInstant()))
        .isEqualTo(Duration.ofHours(1));

    // The service itself takes it as a bearer token, and introspection describes the same token.
    assertThat(service.http().request("GET", "/api/tokens", null, "Authorization", "Bearer " + token.getValue())
        .status()).isEqualTo(200);
    TokenIntrospectionResponse introspected = TokenIntrospectionResponse.parse(new TokenIntrospectionRequest(
        metadata.getIntrospectionEndpointURI(), CREDENTIALS, token).toHTTPRequest().send());
    assertThat(introspected.toSuccessResponse().isActive()).isTrue();
    assertThat(introspected.toSuccessResponse().getJWTID().getValue()).isEqualTo(claims.getJWTID());

    // A scope it lacks is still refused: the JWT carries the same rights as an opaque token.
    assertThat(service.http().request("POST", "/api/tokens/activate", "{\"user_id\":\"550e8400-e29b-41d4-a716-446655440000\"}",
        "Authorization", "Bearer " + token.getValue(), "Content-Type", "application/json").status()).isEqualTo(403);

    assertThat(new TokenRevocationRequest(metadata.getRevocationEndpointURI(), CREDENTIALS, token).toHTTPRequest().send()
        .getStatusCode()).isEqualTo(200);
    assertThat(TokenIntrospectionResponse.parse(new TokenIntrospectionRequest(metadata.getIntrospectionEndpointURI(),
        CREDENTIALS, token).toHTTPRequest().send()).toSuccessResponse().isActive()).isFalse();
    assertThat(service.http().request("GET", "/api/tokens", null, "Authorization", "Bearer " + token.getValue())
        .status()).isEqualTo(401);
  }

  @Test
  @DisplayName("a tampered token or one signed by another key fails verification")
  void tamperedFails() throws Exception {
    int port = startService(jwt()).port();
    String issuer = "http://localhost:" + port;
    String token = token(URI.create(issuer + "/oauth/token"), "tokens:read").getValue();
    String[] parts = token.split("\\.");
    String forgedClaims = java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(
        new String(java.util.Base64.getUrlDecoder().decode(parts[1])).replace("tokens:read", "admin").getBytes());
    String forged = parts[0] + "." + forgedClaims + "." + parts[2];
    DefaultJWTProcessor<SecurityContext> processor = verifier(new ImmutableJWKSet<>(keySet()), issuer);
    assertThatThrownBy(() -> processor.process(forged, null)).hasMessageContaining("Signed JWT rejected");
    assertThat(service.http().request("GET", "/metrics", null, "Authorization", "Bearer " + forged).status())
        .isEqualTo(401);
    // Another audience than the configured one is refused by a verifier that expects its own.
    DefaultJWTProcessor<SecurityContext> other = verifier(new ImmutableJWKSet<>(keySet()), issuer);
    other.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>("https://billing.example", null, null));
    assertThatThrownBy(() -> other.process(token, null)).isInstanceOf(BadJWTException.class);
  }

  @Test
  @DisplayName("the signing key and the live tokens survive a restart; TOKENS_M2M_JWT_AUDIENCE sets aud")
  void survivesRestart() throws Exception {
    int port = startService(jwt().put("TOKENS_PUBLIC_URL", "https://tokens.example.com")
        .put("TOKENS_M2M_JWT_AUDIENCE", "https://api.example.com")).port();
    String token = token(URI.create("http://localhost:" + port + "/oauth/token"), "tokens:read").getValue();
    String kid = kid(token);
    startService(jwt().put("TOKENS_PUBLIC_URL", "https://tokens.example.com")
        .put("TOKENS_M2M_JWT_AUDIENCE", "https://api.example.com"));
    assertThat(keySet().getKeys()).extracting(k -> k.getKeyID()).containsExactly(kid);
    DefaultJWTProcessor<SecurityContext> processor = verifier(new ImmutableJWKSet<>(keySet()), "https://tokens.example.com");
    processor.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>("https://api.example.com",
        new JWTClaimsSet.Builder().issuer("https://tokens.example.com").build(), Set.of("jti")));
    JWTClaimsSet claims = processor.process(token, null);
    assertThat(claims.getAudience()).containsExactly("https://api.example.com");
    assertThat(service.http().request("GET", "/api/tokens", null, "Authorization", "Bearer " + token).status())
        .isEqualTo(200);
    assertThat(kid(token(URI.create("http://localhost:" + service.port() + "/oauth/token"), "tokens:read").getValue()))
        .isEqualTo(kid);
  }

  @Test
  @DisplayName("rotation: the successor is published before it signs; a retired key stays until its tokens expired")
  void rotatesWithOverlap() throws Exception {
    // Keys sign for 4 s, a successor appears 2 s ahead, tokens live 2 s.
    int port = startService(jwt().put("TOKENS_M2M_JWT_KEY_ROTATION", "PT4S").put("TOKENS_M2M_TOKEN_TTL", "PT2S")).port();
    URI endpoint = URI.create("http://localhost:" + port + "/oauth/token");
    String first = kid(token(endpoint, "tokens:read").getValue());
    assertThat(keySet().getKeys()).hasSize(1);

    Eventually.await("a successor is announced", Duration.ofSeconds(6), () -> keySet().getKeys().size() == 2);
    // Announced but not yet signing: a token issued now still carries the first key.
    String late = token(endpoint, "tokens:read").getValue();
    assertThat(kid(late)).isEqualTo(first);
    String successor = keySet().getKeys().stream().map(k -> k.getKeyID()).filter(k -> !k.equals(first)).findFirst()
        .orElseThrow();
    verifier(new ImmutableJWKSet<>(keySet()), "http://localhost:" + port).process(late, null);

    // Polled gently: the token endpoint allows 5 requests a second.
    Instant deadline = Instant.now().plusSeconds(6);
    while (!kid(token(endpoint, "tokens:read").getValue()).equals(successor)) {
      assertThat(Instant.now()).as("the successor takes over").isBefore(deadline);
      Thread.sleep(250);
    }
    // The first key no longer signs, but the token it signed last may still be live: it is still published.
    Instant lateExpiry = SignedJWT.parse(late).getJWTClaimsSet().getExpirationTime().toInstant();
    if (Instant.now().isBefore(lateExpiry)) {
      assertThat(keySet().getKeys()).extracting(k -> k.getKeyID()).contains(first, successor);
    }
    Eventually.await("the retired key leaves the set", Duration.ofSeconds(10),
        () -> keySet().getKeys().stream().noneMatch(k -> k.getKeyID().equals(first)));
    assertThat(Instant.now()).as("a key leaves the set only once its tokens expired").isAfter(lateExpiry);
    assertThat(TestDatabase.query(database, "SELECT count(*) FROM m2m_signing_keys WHERE kid = '" + first + "'"))
        .isEqualTo("0");
  }

  @Test
  @DisplayName("with a vault keyset the private keys are sealed at rest; without that keyset start-up refuses")
  void sealedAtRest() throws Exception {
    String keyset = VaultCipher.newKeysetJson();
    int port = startService(jwt().put("TOKENS_VAULT_KEYSET", keyset)).port();
    String token = token(URI.create("http://localhost:" + port + "/oauth/token"), "tokens:read").getValue();
    String stored = TestDatabase.query(database, "SELECT position(convert_to('\"d\"', 'UTF8') in private_jwk) > 0 "
        + "OR sealed_with IS NULL FROM m2m_signing_keys");
    assertThat(stored).isEqualTo("f");

    startService(jwt().put("TOKENS_VAULT_KEYSET", keyset));
    assertThat(kid(token(URI.create("http://localhost:" + service.port() + "/oauth/token"), "tokens:read").getValue()))
        .isEqualTo(kid(token));
    stopService();
    assertThatThrownBy(() -> startService(jwt())).hasStackTraceContaining("the active signing key cannot be opened");
  }

  @Test
  @DisplayName("opaque stays the default: 43-character tokens, an empty key set")
  void opaqueByDefault() throws Exception {
    int port = startService(jwt().put("TOKENS_M2M_TOKEN_FORMAT", "opaque")).port();
    String token = token(URI.create("http://localhost:" + port + "/oauth/token"), "tokens:read").getValue();
    assertThat(token).hasSize(43).doesNotContain(".");
    assertThat(keySet().getKeys()).isEmpty();
  }
}
