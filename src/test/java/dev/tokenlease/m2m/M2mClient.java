package dev.tokenlease.m2m;

import dev.tokenlease.support.Http.Response;
import dev.tokenlease.support.Http;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

/** Test helper speaking the OAuth and M2M admin endpoints of a running service. */
final class M2mClient {
  static final String FORM = "application/x-www-form-urlencoded";

  private final Http http;

  M2mClient(Http http) {
    this.http = http;
  }

  static String basic(String id, String secret) {
    String pair = URLEncoder.encode(id, StandardCharsets.UTF_8) + ":" + URLEncoder.encode(secret, StandardCharsets.UTF_8);
    return "Basic " + Base64.getEncoder().encodeToString(pair.getBytes(StandardCharsets.UTF_8));
  }

  static String bearer(String token) {
    return "Bearer " + token;
  }

  Response tokenRequest(String id, String secret, String form) {
    return http.request("POST", "/oauth/token", form, "Content-Type", FORM, "Authorization", basic(id, secret));
  }

  /** An access token for the client, failing the test on any error. */
  String token(String id, String secret, String scope) {
    String form = "grant_type=client_credentials" + (scope == null ? "" : "&scope=" + URLEncoder.encode(scope, StandardCharsets.UTF_8));
    Response response = tokenRequest(id, secret, form);
    if (response.status() != 200) {
      throw new AssertionError("token request failed: " + response);
    }
    return response.json().getString("access_token");
  }

  /** Registers a client with the admin's token; answers the 201 body (with clientSecret). */
  JsonObject register(String adminToken, String name, String tenant, String... scopes) {
    Response response = http.request("POST", "/auth/m2m/clients",
        new JsonObject().put("clientName", name).put("tenantId", tenant).put("scopes", new JsonArray(java.util.List.of(scopes))).encode(),
        "Content-Type", "application/json", "Authorization", bearer(adminToken));
    if (response.status() != 201) {
      throw new AssertionError("registration failed: " + response);
    }
    return response.json();
  }

  Response get(String path, String token) {
    return http.request("GET", path, null, "Authorization", bearer(token));
  }

  Response send(String method, String path, String token, String json) {
    return json == null
        ? http.request(method, path, null, "Authorization", bearer(token))
        : http.request(method, path, json, "Authorization", bearer(token), "Content-Type", "application/json");
  }

  Response revoke(String id, String secret, String token) {
    return http.request("POST", "/oauth/revoke", "token=" + token, "Content-Type", FORM, "Authorization", basic(id, secret));
  }

  Response introspect(String id, String secret, String token) {
    return http.request("POST", "/oauth/introspect", "token=" + token, "Content-Type", FORM, "Authorization", basic(id, secret));
  }
}
