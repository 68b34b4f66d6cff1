package dev.tokenlease.platform.http;

import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import dev.tokenlease.platform.config.AppConfig;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.Route;
import io.vertx.ext.web.Router;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Serves the HTTP API: the body handler, the routes each capability brings ({@link ApiRoutes}),
 * and the failure handling that writes every error. Holds no state of any capability. Deploy one
 * instance per core; they share the port.
 */
public final class HttpApiVerticle extends VerticleBase {
  /** Request bodies above this size get 413; every valid request body is far smaller. */
  public static final long BODY_LIMIT = 64 * 1024;
  /** Longer than the longest wait for a token (30 s), so a waiting activation is never cut off. */
  public static final int IDLE_TIMEOUT_SECONDS = 45;

  private final int port;
  private final AppConfig.TlsConfig tls;
  private final List<ApiRoutes> apis;
  private final Map<String, ErrorShape> errorShapes;
  private Router router;
  private HttpServer server;

  /** @param errorShapes the error body shape of each API that does not use the seed's, by path prefix */
  public HttpApiVerticle(int port, List<ApiRoutes> apis, Map<String, ErrorShape> errorShapes) {
    this(port, null, apis, errorShapes);
  }

  /** @param tls HTTPS with HTTP/2 by ALPN, or null for plain HTTP/1.1 */
  public HttpApiVerticle(int port, AppConfig.TlsConfig tls, List<ApiRoutes> apis, Map<String, ErrorShape> errorShapes) {
    this.port = port;
    this.tls = tls;
    this.apis = List.copyOf(apis);
    this.errorShapes = Map.copyOf(errorShapes);
  }

  @Override
  public Future<?> start() {
    router = Router.router(vertx);
    router.route().handler(new RequestLog());
    router.route().handler(new JsonBodyHandler(BODY_LIMIT));
    List<RequestInput.Declared> declared = new ArrayList<>();
    for (ApiRoutes api : apis) {
      api.mount(vertx, router, declared);
    }
    ApiError errors = new ApiError(declared, BODY_LIMIT, errorShapes);
    router.route().failureHandler(errors);
    for (int status : new int[] {400, 404, 405, 413, 500}) {
      router.errorHandler(status, errors.forStatus(status));
    }
    // Idle connections (half-sent requests included) are closed rather than held forever.
    HttpServerOptions options = new HttpServerOptions().setPort(port).setIdleTimeout(IDLE_TIMEOUT_SECONDS);
    if (tls != null) {
      // ALPN offers h2 and http/1.1; clients without ALPN get HTTP/1.1.
      options.setSsl(true).setUseAlpn(true).setKeyCertOptions(new PemKeyCertOptions()
          .setCertPath(tls.certFile().toString()).setKeyPath(tls.keyFile().toString()));
    }
    server = vertx.createHttpServer(options)
        .requestHandler(router)
        // A request the HTTP decoder cannot read never reaches the router: its answer is written here.
        .invalidRequestHandler(request -> {
          HttpServerResponse response = request.response().setStatusCode(400)
              .putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
              .putHeader(HttpHeaders.CONNECTION, "close");
          response.end(ErrorShape.STATUS_MESSAGE.write(response,
              new ApiException(ErrorCode.BAD_REQUEST, "Malformed HTTP request.")).toBuffer());
        });
    return server.listen();
  }

  @Override
  public Future<?> stop() {
    // Lets requests in flight finish before the pool and persistence stop behind us.
    return server.shutdown(10, TimeUnit.SECONDS);
  }

  /** The routes this instance serves, once started: the test that holds them against the API document reads them. */
  public List<Route> routes() {
    return router.getRoutes();
  }

  /** The port actually bound (useful when configured as 0). */
  public int actualPort() {
    return server.actualPort();
  }
}
