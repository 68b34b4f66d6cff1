package dev.tokenlease.platform.http;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.StaticHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * The API's own reference, open whatever {@code TOKENS_AUTH_REQUIRED} says: {@code GET /openapi.json}
 * answers the OpenAPI 3.1 document of every endpoint (a resource of the jar), and {@code GET /docs}
 * is Swagger UI on that document. Swagger UI's files come from its webjar on the classpath, so the
 * page needs no other host; the page and the script that points Swagger UI at the document are ours
 * and take the place of the jar's files of the same names (the jar's load a demo from the internet).
 */
public final class ApiDocs implements ApiRoutes {
  /** The document's classpath resource. */
  public static final String DOCUMENT = "openapi/openapi.json";
  private static final String OWN_FILES = "openapi/docs";
  private static final String PAGE = OWN_FILES + "/index.html";
  /** Swagger UI's files in its webjar; the version is the one pom.xml names. */
  static final String SWAGGER_UI = "META-INF/resources/webjars/swagger-ui/5.34.1";

  private final byte[] document;
  private final byte[] page;

  private ApiDocs(byte[] document, byte[] page) {
    this.document = document;
    this.page = page;
  }

  /** Reads the document and the page once; call at start-up, not on an event loop. */
  public static ApiDocs load() {
    return new ApiDocs(resource(DOCUMENT), resource(PAGE));
  }

  @Override
  public void mount(Vertx vertx, Router router, List<RequestInput.Declared> declared) {
    RequestInput.route(router, declared, HttpMethod.GET, "/openapi.json", ctx -> send(ctx, "application/json", document));
    RequestInput.route(router, declared, HttpMethod.GET, "/docs", ctx -> send(ctx, "text/html; charset=utf-8", page));
    // Our files first; a name they lack falls through to Swagger UI's, and one neither has to the 404.
    router.get("/docs/*").handler(StaticHandler.create(OWN_FILES)).handler(StaticHandler.create(SWAGGER_UI));
    // Recorded by the file it names, so that another method on any file gets 405 with "Allow: GET".
    declared.add(new RequestInput.Declared(HttpMethod.GET, "/docs/:file"));
  }

  private static void send(RoutingContext ctx, String contentType, byte[] body) {
    ctx.response().putHeader(HttpHeaders.CONTENT_TYPE, contentType).end(Buffer.buffer(body));
  }

  private static byte[] resource(String name) {
    try (InputStream in = ApiDocs.class.getClassLoader().getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("Resource " + name + " is missing from the classpath");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException("Reading resource " + name + " failed", e);
    }
  }
}
