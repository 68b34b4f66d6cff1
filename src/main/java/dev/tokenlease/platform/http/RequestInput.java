package dev.tokenlease.platform.http;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns an HTTP request into the JSON input shape every API's parsers read: the body (strict JSON,
 * empty counts as {@code {}}), with named path and query parameters put over it. Also records
 * routes as they are declared, so that {@link ApiError} can answer 405 with an {@code Allow} header.
 */
public final class RequestInput {
  /** A route as declared. */
  public record Declared(HttpMethod method, String path) {}

  private RequestInput() {}

  public static void route(Router router, List<Declared> declared, HttpMethod method, String path,
      Handler<RoutingContext> handler) {
    router.route(method, path).handler(named(path)).handler(handler);
    declared.add(new Declared(method, path));
  }

  /** Records the route's template for the access log. */
  private static Handler<RoutingContext> named(String path) {
    return ctx -> {
      ctx.put(RequestLog.ROUTE_KEY, path);
      ctx.next();
    };
  }

  /** A route whose handler runs after {@code guard} (authentication, rate limits) lets it through. */
  public static void route(Router router, List<Declared> declared, HttpMethod method, String path,
      Handler<RoutingContext> guard, Handler<RoutingContext> handler) {
    router.route(method, path).handler(named(path)).handler(guard).handler(handler);
    declared.add(new Declared(method, path));
  }

  /** The request body as read, whatever its type; empty when there was none. */
  public static Buffer rawBody(RoutingContext ctx) {
    return JsonBodyHandler.body(ctx);
  }

  /** The request body as a JSON object; an empty body counts as {@code {}}. */
  public static JsonObject body(RoutingContext ctx) {
    Buffer buffer = JsonBodyHandler.body(ctx);
    if (buffer.length() == 0 || buffer.toString().isBlank()) {
      return new JsonObject();
    }
    return StrictJson.object(buffer);
  }

  public static JsonObject path(RoutingContext ctx, JsonObject input, String name) {
    return input.put(name, ctx.pathParam(name));
  }

  /** Query parameters by name: one value as a string, repeated values as an array (never valid). */
  public static JsonObject query(RoutingContext ctx, String... names) {
    JsonObject input = new JsonObject();
    for (String name : names) {
      List<String> values;
      try {
        values = ctx.queryParam(name);
      } catch (IllegalArgumentException e) {
        throw new ApiException(ErrorCode.BAD_REQUEST, "Malformed query string.");
      }
      if (values.size() == 1) {
        input.put(name, values.get(0));
      } else if (values.size() > 1) {
        input.put(name, new JsonArray(new ArrayList<Object>(values)));
      }
    }
    return input;
  }
}
