package dev.tokenlease.ops;

import dev.tokenlease.platform.http.RequestInput;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.StaticHandler;
import java.util.List;

/**
 * {@code GET /dashboard}: a live page of the pools for operators (README, "Dashboard"), and
 * {@code GET /dashboard/:file}, its script, styles and icon, all resources of the jar. The files
 * hold no data, so they are open like {@code /docs}; the page asks for a bearer token when the API
 * wants one and sends it with each of its calls, which the API's own guards check.
 */
public final class DashboardRoutes {
  private static final String FILES = "dashboard";
  private static final String PAGE = FILES + "/index.html";
  /**
   * Only this origin's files, no inline script or style, no framing: a page that holds a bearer
   * token in memory loads nothing it did not ship and cannot be embedded to be clicked on.
   */
  static final String CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; "
      + "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
  /** The files change with the jar and have no versioned names: the browser asks again each time (they are small). */
  private static final String CACHE_CONTROL = "no-cache";

  private final Vertx vertx;
  private final List<RequestInput.Declared> declared;

  public DashboardRoutes(Vertx vertx, List<RequestInput.Declared> declared) {
    this.vertx = vertx;
    this.declared = declared;
  }

  public void mount(Router router) {
    // Read once per verticle through Vert.x's file system, which reads classpath resources off the event loop.
    Future<Buffer> page = vertx.fileSystem().readFile(PAGE);
    RequestInput.route(router, declared, HttpMethod.GET, "/dashboard", ctx -> page(ctx, page));
    router.get("/dashboard/*").handler(DashboardRoutes::fileHeaders)
        .handler(StaticHandler.create(FILES).setCachingEnabled(false).setDirectoryListing(false));
    // Recorded by the file it names, so that another method on any file gets 405 with "Allow: GET".
    declared.add(new RequestInput.Declared(HttpMethod.GET, "/dashboard/:file"));
  }

  private static void page(RoutingContext ctx, Future<Buffer> page) {
    page.onSuccess(body -> {
      headers(ctx.response());
      ctx.response().putHeader(HttpHeaders.CONTENT_TYPE, "text/html; charset=utf-8").end(body);
    }).onFailure(ctx::fail);
  }

  private static void fileHeaders(RoutingContext ctx) {
    headers(ctx.response());
    ctx.next();
  }

  private static void headers(io.vertx.core.http.HttpServerResponse response) {
    response.putHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .putHeader("X-Content-Type-Options", "nosniff")
        .putHeader("Referrer-Policy", "no-referrer")
        .putHeader(HttpHeaders.CACHE_CONTROL, CACHE_CONTROL);
  }
}
