package dev.tokenlease.platform.http;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import io.vertx.core.Handler;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.HttpException;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place that writes error bodies: every failure, whether from validation, the pool, the
 * database, or the router itself (404, 405, 413, malformed requests), becomes a JSON
 * {@code {status, message}} with the matching HTTP status. Unexpected failures are logged with
 * their stack trace and never shown to the caller.
 */
public final class ApiError implements Handler<RoutingContext> {
  private static final Logger LOG = LoggerFactory.getLogger(ApiError.class);

  private record Template(HttpMethod method, Pattern path) {}

  private final List<Template> routes;
  private final long bodyLimit;

  ApiError(List<RequestInput.Declared> declared, long bodyLimit) {
    this.routes = declared.stream()
        .map(d -> new Template(d.method(), Pattern.compile(d.path().replaceAll(":[a-z_]+", "[^/]+") + "/?")))
        .toList();
    this.bodyLimit = bodyLimit;
  }

  @Override
  public void handle(RoutingContext ctx) {
    Throwable failure = ctx.failure();
    int code = ctx.statusCode();
    if (failure instanceof ApiException e && e.error() == ErrorCode.OUTCOME_UNKNOWN) {
      // Any status would claim an outcome nobody knows yet; no answer is the truthful one.
      LOG.warn("Closing the connection of {} {} without an answer: {}", ctx.request().method(), ctx.request().path(),
          e.getMessage());
      ctx.request().connection().close();
    } else if (failure instanceof ApiException e) {
      if (e.retryAfterSeconds() > 0) {
        ctx.response().putHeader(HttpHeaders.RETRY_AFTER, Long.toString(e.retryAfterSeconds()));
      }
      write(ctx, e.error().code(), e.error().status(), e.getMessage());
    } else if (failure instanceof ReplyException e) {
      replyFailure(ctx, e);
    } else if (failure instanceof HttpException e) {
      statusOnly(ctx, e.getStatusCode());
    } else if (failure == null || (code >= 400 && code < 500)) {
      statusOnly(ctx, code);
    } else {
      LOG.error("Unexpected failure on {} {}", ctx.request().method(), ctx.request().path(), failure);
      write(ctx, 500, ErrorCode.INTERNAL.status(), "Failed to process request: " + describe(failure));
    }
  }

  /**
   * For the router's error handlers: the router may call them without recording the status on the
   * context (for example a malformed path), so the status they were registered for is the fallback.
   */
  Handler<RoutingContext> forStatus(int code) {
    return ctx -> {
      if (ctx.failure() != null || ctx.statusCode() != -1) {
        handle(ctx);
      } else {
        statusOnly(ctx, code);
      }
    };
  }

  private void replyFailure(RoutingContext ctx, ReplyException e) {
    switch (e.failureType()) {
      case RECIPIENT_FAILURE -> {
        ErrorCode error = ErrorCode.fromCode(e.failureCode());
        write(ctx, error.code(), error.status(), e.getMessage());
      }
      case TIMEOUT -> write(ctx, 503, ErrorCode.UNAVAILABLE.status(), "The token pool did not answer in time; try again.");
      default -> write(ctx, 503, ErrorCode.UNAVAILABLE.status(), "The token pool is not running.");
    }
  }

  private void statusOnly(RoutingContext ctx, int code) {
    String path = ctx.request().path();
    switch (code) {
      case 404 -> write(ctx, 404, "not_found", "No such endpoint: " + ctx.request().method() + " " + path);
      case 405 -> {
        String allowed = routes.stream().filter(t -> t.path.matcher(path).matches())
            .map(t -> t.method.name()).distinct().collect(Collectors.joining(", "));
        ctx.response().putHeader(HttpHeaders.ALLOW, allowed);
        write(ctx, 405, "method_not_allowed",
            "Method " + ctx.request().method() + " is not allowed on " + path + "; allowed: " + allowed + ".");
      }
      case 413 -> write(ctx, 413, "payload_too_large", "Request body exceeds the limit of " + bodyLimit + " bytes.");
      case 400 -> write(ctx, 400, ErrorCode.BAD_REQUEST.status(), "Malformed request: check the path, query string and headers.");
      default -> {
        if (code >= 400 && code < 500) {
          write(ctx, code, "client_error", "The request was refused (HTTP " + code + ").");
        } else {
          write(ctx, 500, ErrorCode.INTERNAL.status(), "Failed to process request: internal error");
        }
      }
    }
  }

  /**
   * Writes an error body unless a response has begun: the pool API's {@code {status, message}},
   * except under {@code /oauth/} (RFC 6749 {@code {error, error_description}}) and
   * {@code /auth/m2m} (seed 003's {@code {error, message, details: {reason}}}), so that every
   * answer of an API, the router's 404/405/413 included, has that API's shape.
   */
  public static void write(RoutingContext ctx, int code, String status, String message) {
    HttpServerResponse response = ctx.response();
    if (response.headWritten()) {
      if (!response.ended()) {
        response.reset();
      }
      return;
    }
    response.setStatusCode(code).putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
    String path = ctx.request().path();
    JsonObject body;
    if (path != null && path.startsWith("/oauth/")) {
      // RFC 6749 §5.2 bodies on the OAuth endpoints, never cached.
      response.putHeader(HttpHeaders.CACHE_CONTROL, "no-store").putHeader("Pragma", "no-cache");
      body = new JsonObject().put("error", code == 400 || code == 413 ? "invalid_request" : status)
          .put("error_description", message);
    } else if (path != null && (path.equals("/auth/m2m") || path.startsWith("/auth/m2m/"))) {
      // Seed 003's shape under the M2M admin API.
      response.putHeader(HttpHeaders.CACHE_CONTROL, "no-store");
      body = new JsonObject().put("error", status.toUpperCase(java.util.Locale.ROOT))
          .put("message", code >= 500 ? "Failed to process request" : "Request refused")
          .put("details", new JsonObject().put("reason", message));
    } else {
      body = new JsonObject().put("status", status).put("message", message);
    }
    response.end(body.toBuffer());
  }

  private static String describe(Throwable failure) {
    String message = failure.getMessage();
    return message == null ? failure.getClass().getSimpleName() : message;
  }

}
