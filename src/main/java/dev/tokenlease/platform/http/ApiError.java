package dev.tokenlease.platform.http;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import io.vertx.core.Handler;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.HttpException;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place that writes error bodies: every failure, whether from validation, a capability,
 * the database, or the router itself (404, 405, 413, malformed requests), becomes an
 * {@link ApiException} and is written in the body shape of the API whose path it is under (the
 * seed's {@code {status, message}} unless a capability registered another shape for its prefix).
 * Unexpected failures are logged with their stack trace and never shown to the caller.
 */
public final class ApiError implements Handler<RoutingContext> {
  private static final Logger LOG = LoggerFactory.getLogger(ApiError.class);

  private record Template(HttpMethod method, Pattern path) {}

  private final List<Template> routes;
  private final long bodyLimit;
  private final Map<String, ErrorShape> shapes;

  /** @param shapes each API's error shape by its path prefix (such as {@code /oauth}) */
  ApiError(List<RequestInput.Declared> declared, long bodyLimit, Map<String, ErrorShape> shapes) {
    this.shapes = Map.copyOf(shapes);
    this.routes = declared.stream()
        .map(d -> new Template(d.method(), Pattern.compile(d.path().replaceAll(":[A-Za-z_][A-Za-z0-9_]*", "[^/]+") + "/?")))
        .toList();
    this.bodyLimit = bodyLimit;
  }

  @Override
  public void handle(RoutingContext ctx) {
    Throwable failure = ctx.failure();
    int code = ctx.statusCode();
    if (failure instanceof ApiException e && e.error() == ErrorCode.OUTCOME_UNKNOWN) {
      // Any status would claim an outcome nobody knows yet; no answer is the truthful one.
      LOG.warn("Closing the connection of {} {} (request {}) without an answer: {}", ctx.request().method(),
          ctx.request().path(), RequestLog.id(ctx),
          e.getMessage());
      ctx.request().connection().close();
    } else if (failure instanceof ApiException e) {
      write(ctx, e.error().code(), e);
    } else if (failure instanceof ReplyException e) {
      replyFailure(ctx, e);
    } else if (failure instanceof HttpException e) {
      statusOnly(ctx, e.getStatusCode());
    } else if (failure == null || (code >= 400 && code < 500)) {
      statusOnly(ctx, code);
    } else {
      LOG.error("Unexpected failure on {} {} (request {})", ctx.request().method(), ctx.request().path(),
          RequestLog.id(ctx), failure);
      write(ctx, 500, new ApiException(ErrorCode.INTERNAL, "Failed to process request: " + describe(failure)));
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
        write(ctx, error.code(), new ApiException(error, e.getMessage()));
      }
      case TIMEOUT -> write(ctx, 503, new ApiException(ErrorCode.UNAVAILABLE, "The service did not answer in time; try again."));
      default -> write(ctx, 503, new ApiException(ErrorCode.UNAVAILABLE, "The service is starting or stopping; try again shortly."));
    }
  }

  private void statusOnly(RoutingContext ctx, int code) {
    String path = ctx.request().path();
    switch (code) {
      case 404 -> write(ctx, 404, new ApiException(ErrorCode.NOT_FOUND, "No such endpoint: " + ctx.request().method() + " " + path));
      case 405 -> {
        String allowed = routes.stream().filter(t -> t.path.matcher(path).matches())
            .map(t -> t.method.name()).distinct().collect(Collectors.joining(", "));
        ctx.response().putHeader(HttpHeaders.ALLOW, allowed);
        write(ctx, 405, new ApiException(ErrorCode.METHOD_NOT_ALLOWED,
            "Method " + ctx.request().method() + " is not allowed on " + path + "; allowed: " + allowed + "."));
      }
      case 413 -> write(ctx, 413, new ApiException(ErrorCode.PAYLOAD_TOO_LARGE, "Request body exceeds the limit of " + bodyLimit + " bytes."));
      case 400 -> write(ctx, 400, new ApiException(ErrorCode.BAD_REQUEST, "Malformed request: check the path, query string and headers."));
      default -> {
        if (code >= 400 && code < 500) {
          write(ctx, code, new ApiException(ErrorCode.BAD_REQUEST, "The request was refused (HTTP " + code + ").")
              .named("client_error", null));
        } else {
          write(ctx, 500, new ApiException(ErrorCode.INTERNAL, "Failed to process request: internal error"));
        }
      }
    }
  }

  /** Writes {@code e} in the shape of the API the path is under, unless a response has begun. */
  private void write(RoutingContext ctx, int httpStatus, ApiException e) {
    HttpServerResponse response = ctx.response();
    if (response.headWritten()) {
      if (!response.ended()) {
        response.reset();
      }
      return;
    }
    if (e.retryAfterSeconds() > 0) {
      response.putHeader(HttpHeaders.RETRY_AFTER, Long.toString(e.retryAfterSeconds()));
    }
    response.setStatusCode(httpStatus).putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
    response.end(shapeFor(ctx.request().path()).write(response, e).toBuffer());
  }

  private ErrorShape shapeFor(String path) {
    if (path != null) {
      for (Map.Entry<String, ErrorShape> api : shapes.entrySet()) {
        if (path.equals(api.getKey()) || path.startsWith(api.getKey() + "/")) {
          return api.getValue();
        }
      }
    }
    return ErrorShape.STATUS_MESSAGE;
  }

  private static String describe(Throwable failure) {
    String message = failure.getMessage();
    return message == null ? failure.getClass().getSimpleName() : message;
  }

}
