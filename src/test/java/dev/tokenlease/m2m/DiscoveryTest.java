package dev.tokenlease.m2m;

import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.oauth2.sdk.AccessTokenResponse;
import com.nimbusds.oauth2.sdk.ClientCredentialsGrant;
import com.nimbusds.oauth2.sdk.GrantType;
import com.nimbusds.oauth2.sdk.Scope;
import com.nimbusds.oauth2.sdk.TokenIntrospectionRequest;
import com.nimbusds.oauth2.sdk.TokenIntrospectionResponse;
import com.nimbusds.oauth2.sdk.TokenRequest;
import com.nimbusds.oauth2.sdk.TokenResponse;
import com.nimbusds.oauth2.sdk.auth.ClientSecretBasic;
import com.nimbusds.oauth2.sdk.auth.ClientAuthenticationMethod;
import com.nimbusds.oauth2.sdk.auth.Secret;
import com.nimbusds.oauth2.sdk.as.AuthorizationServerMetadata;
import com.nimbusds.oauth2.sdk.id.ClientID;
import com.nimbusds.oauth2.sdk.id.Issuer;
import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.Http;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** RFC 8414 discovery, as a standard OAuth library does it (Nimbus OAuth 2.0 SDK). */
@DisplayName("OAuth authorization server metadata")
class DiscoveryTest extends FreshDatabase {
  private static final String ADMIN = "discovery-admin";
  private static final String SECRET = "0123456789abcdef0123456789abcdef-secret";

  @Test
  @DisplayName("Nimbus resolves the metadata from the issuer, then gets and introspects a token through the endpoints it names")
  void nimbusDiscovers() throws Exception {
    int port = startService(new JsonObject().put("TOKENS_ADMIN_CLIENT_ID", ADMIN).put("TOKENS_ADMIN_CLIENT_SECRET", SECRET))
        .port();
    Issuer issuer = new Issuer("http://localhost:" + port);
    AuthorizationServerMetadata metadata = AuthorizationServerMetadata.resolve(issuer);
    assertThat(metadata.getIssuer()).isEqualTo(issuer);
    assertThat(metadata.getTokenEndpointURI().toString()).isEqualTo(issuer + "/oauth/token");
    assertThat(metadata.getGrantTypes()).containsExactly(GrantType.CLIENT_CREDENTIALS);
    assertThat(metadata.getTokenEndpointAuthMethods())
        .contains(ClientAuthenticationMethod.CLIENT_SECRET_BASIC, ClientAuthenticationMethod.CLIENT_SECRET_POST);
    assertThat(metadata.getScopes().toStringList()).contains("tokens:read", "tokens:write", "metrics:read", "admin");

    ClientSecretBasic credentials = new ClientSecretBasic(new ClientID(ADMIN), new Secret(SECRET));
    TokenResponse issued = TokenResponse.parse(new TokenRequest(metadata.getTokenEndpointURI(), credentials,
        new ClientCredentialsGrant(), new Scope("tokens:read")).toHTTPRequest().send());
    assertThat(issued.indicatesSuccess()).as("%s", issued).isTrue();
    AccessTokenResponse token = issued.toSuccessResponse();
    TokenIntrospectionResponse introspected = TokenIntrospectionResponse.parse(new TokenIntrospectionRequest(
        metadata.getIntrospectionEndpointURI(), credentials, token.getTokens().getAccessToken()).toHTTPRequest().send());
    assertThat(introspected.indicatesSuccess()).isTrue();
    assertThat(introspected.toSuccessResponse().isActive()).isTrue();
    assertThat(introspected.toSuccessResponse().getScope().toStringList()).containsExactly("tokens:read");
  }

  @Test
  @DisplayName("TOKENS_PUBLIC_URL is the issuer whatever the Host; without it a malformed Host is refused")
  void publicUrl() throws Exception {
    Http http = startService(new JsonObject().put("TOKENS_PUBLIC_URL", "https://tokens.example.com/")).http();
    JsonObject metadata = http.raw("GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: evil.example\r\n"
        + "Connection: close\r\n\r\n").json();
    assertThat(metadata.getString("issuer")).isEqualTo("https://tokens.example.com");
    assertThat(metadata.getString("revocation_endpoint")).isEqualTo("https://tokens.example.com/oauth/revoke");

    http = startService(new JsonObject()).http();
    Http.Response refused = http.raw("GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n");
    assertThat(refused.status()).isEqualTo(400);
  }
}
