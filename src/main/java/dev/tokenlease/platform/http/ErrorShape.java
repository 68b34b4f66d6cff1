package dev.tokenlease.platform.http;

import dev.tokenlease.platform.ApiException;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;

/** How one API writes its errors: the body, and any header its contract asks for. */
public interface ErrorShape {
  /** The seed's {@code {status, message}}: the pool, users, health and vault APIs. */
  ErrorShape STATUS_MESSAGE = (response, e) ->
      new JsonObject().put("status", e.code() != null ? e.code() : e.error().status()).put("message", e.getMessage());

  /** Sets the headers and returns the body of {@code e}'s answer; the caller sets status and Content-Type. */
  JsonObject write(HttpServerResponse response, ApiException e);
}
