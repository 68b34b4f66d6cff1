package dev.tokenlease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenlease.lease.bus.PoolMessages;
import dev.tokenlease.lease.routes.ChangeStream;
import dev.tokenlease.m2m.Auth;
import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.http.ApiDocs;
import dev.tokenlease.platform.http.HttpApiVerticle;
import dev.tokenlease.support.ApiContract;
import dev.tokenlease.support.Http;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Route;
import io.vertx.json.schema.OutputUnit;
import io.vertx.json.schema.SchemaRepository;
import io.vertx.openapi.contract.OpenAPIContract;
import io.vertx.openapi.contract.OpenAPIVersion;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The OpenAPI document against the HTTP server that serves it: the same routes (both ways), a
 * document vertx-openapi accepts, and the Swagger UI page with every file it loads. The server is
 * the real HTTP verticle with every API the service mounts; no request here reaches the pool or a
 * database.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@DisplayName("API document")
class ApiDocumentTest {
  /** A prefix route ("/docs/*", the static files) stands in the document for one file name below it. */
  private static final String PREFIX_ROUTE_PARAMETER = "{file}";
  private static final Pattern VERTX_PARAMETER = Pattern.compile(":([A-Za-z0-9_]+)");
  private static final String JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema";

  private Vertx vertx;
  private HttpApiVerticle server;
  private Http http;

  @BeforeAll
  void start() throws Exception {
    vertx = Vertx.vertx();
    // The live stream asks the pool where change ids stand; no pool answers here, but the message must be sendable.
    PoolMessages.registerCodecs(vertx.eventBus());
    Auth auth = new Auth(new AppConfig.AuthConfig(false, null, null, Duration.ofHours(1), 0, 200, 5, 20),
        Clock.systemUTC());
    ChangeStream.Shared events = new ChangeStream.Shared(new AppConfig.EventsConfig(100, Duration.ofSeconds(15), 65536, 10));
    server = new HttpApiVerticle(0, TokenService.apis(auth, events, ApiDocs.load(), new dev.tokenlease.platform.metrics.Metrics()), TokenService.ERROR_SHAPES);
    vertx.deployVerticle(server).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    http = new Http(server.actualPort());
  }

  @AfterAll
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  /** "METHOD /path" of every route the router serves, with path parameters as OpenAPI writes them. */
  private Set<String> served() {
    Set<String> served = new TreeSet<>();
    for (Route route : server.routes()) {
      if (route.getPath() == null) {
        // Handlers for every request (the body handler, the failure handler) serve no endpoint of their own;
        // a regular-expression route would have no path to document.
        assertThat(route.isRegexPath()).as("a route without a path or parameters: %s", route).isFalse();
        continue;
      }
      Matcher parameter = VERTX_PARAMETER.matcher(route.getPath());
      String path = parameter.replaceAll("{$1}");
      if (!route.isExactPath()) {
        path = path + PREFIX_ROUTE_PARAMETER;
      }
      assertThat(route.methods()).as("route %s names its methods", route.getPath()).isNotEmpty();
      for (HttpMethod method : route.methods()) {
        served.add(method.name() + " " + path);
      }
    }
    return served;
  }

  @Test
  @DisplayName("the router serves exactly the operations the document declares, route by route")
  void routesAgree() {
    Set<String> served = served();
    Set<String> declared = ApiContract.operations(ApiContract.document()).keySet();
    Set<String> undocumented = new TreeSet<>(served);
    undocumented.removeAll(declared);
    Set<String> unserved = new TreeSet<>(declared);
    unserved.removeAll(served);
    assertThat(undocumented.isEmpty() && unserved.isEmpty())
        .as("served but not in the document: %s%ndeclared but not served: %s", undocumented, unserved)
        .isTrue();
  }

  @Test
  @DisplayName("the document is OpenAPI 3.1, every schema a JSON Schema, every $ref resolved, and vertx-openapi builds it")
  void documentIsValid() throws Exception {
    JsonObject document = ApiContract.document();
    assertThat(document.getString("openapi")).isEqualTo("3.1.0");
    OpenAPIVersion version = OpenAPIVersion.fromContract(document);
    assertThat(version).isEqualTo(OpenAPIVersion.V3_1);
    SchemaRepository repository = await(version.getRepository(vertx, "app://"));
    // (vertx-json-schema annotates what it reads, so each step gets its own copy.)
    // The structure against the OpenAPI 3.1 schema, as OpenAPIContract.from does...
    assertValid(await(version.validateContract(vertx, repository, document.copy())), "the OpenAPI 3.1 schema");
    // ...every Schema Object against JSON Schema 2020-12, which that schema leaves open...
    for (Map.Entry<String, JsonObject> schema : schemas(document).entrySet()) {
      assertValid(repository.validator(JSON_SCHEMA_2020_12).validate(schema.getValue().copy()),
          "JSON Schema 2020-12 at " + schema.getKey());
    }
    // ...and every $ref, the form bodies' and the HTML's included, resolves.
    await(version.resolve(vertx, repository, document.copy()));

    OpenAPIContract contract = ApiContract.load(vertx).contract();
    Set<String> operationIds = ApiContract.operations(document).values().stream()
        .map(operation -> operation.getString("operationId")).collect(Collectors.toSet());
    assertThat(operationIds).hasSize(ApiContract.operations(document).size());
    assertThat(contract.operations()).hasSize(operationIds.size());
  }

  @Test
  @DisplayName("a broken $ref or a broken schema in the document would fail these checks")
  void checksHaveTeeth() throws Exception {
    JsonObject brokenRef = ApiContract.document();
    brokenRef.getJsonObject("components").getJsonObject("schemas").getJsonObject("TokenList")
        .getJsonObject("properties").getJsonObject("tokens").put("items", new JsonObject().put("$ref", "#/components/schemas/Nothing"));
    Throwable refused = OpenAPIContract.from(vertx, ApiContract.modeled(brokenRef)).toCompletionStage()
        .toCompletableFuture().handle((contract, failure) -> failure).get(60, TimeUnit.SECONDS);
    assertThat(refused).as("a $ref to nothing").isNotNull();
    assertThat(refused.getMessage()).contains("Nothing");

    JsonObject brokenSchema = ApiContract.document();
    brokenSchema.getJsonObject("components").getJsonObject("schemas").getJsonObject("Timestamp").put("type", "strng");
    SchemaRepository repository = await(OpenAPIVersion.V3_1.getRepository(vertx, "app://"));
    assertThat(schemas(brokenSchema).values().stream()
        .allMatch(schema -> repository.validator(JSON_SCHEMA_2020_12).validate(schema.copy()).getValid()))
        .as("a type that JSON Schema does not have").isFalse();
  }

  @Test
  @DisplayName("an answer with an undocumented field, a timestamp in another format, or an undeclared status fails the check")
  void answerChecksHaveTeeth() {
    ApiContract contract = ApiContract.load(vertx);
    JsonObject token = new JsonObject().put("token_id", "c1ab147f-1d6e-4a7c-9c47-5e4b1f0a9d21").put("state", "active")
        .put("current_user_id", "550e8400-e29b-41d4-a716-446655440000").put("activated_at", "2025-12-19T15:12:02Z")
        .put("released_at", null).put("usage_count", 3);
    String uri = "/api/tokens/c1ab147f-1d6e-4a7c-9c47-5e4b1f0a9d21";
    assertThat(contract.check("GET", uri, json(200, token))).isEqualTo("GET /api/tokens/{token_id} 200");
    assertThatThrownBy(() -> contract.check("GET", uri, json(200, token.copy().put("secret", "x"))))
        .isInstanceOf(AssertionError.class);
    assertThatThrownBy(() -> contract.check("GET", uri, json(200, token.copy().put("activated_at", "2025-12-19T15:12:02.5Z"))))
        .isInstanceOf(AssertionError.class);
    assertThatThrownBy(() -> contract.check("GET", uri, json(200, token.copy().put("state", "leased"))))
        .isInstanceOf(AssertionError.class);
    assertThatThrownBy(() -> contract.check("GET", uri, json(418, token))).hasMessageContaining("does not declare");
    assertThatThrownBy(() -> contract.check("GET", uri, json(404, new JsonObject().put("status", "conflict")
        .put("message", "Token not found")))).isInstanceOf(AssertionError.class);
  }

  private static Http.Response json(int status, JsonObject body) {
    return new Http.Response(status, java.net.http.HttpHeaders.of(
        Map.of("content-type", List.of("application/json")), (name, value) -> true), body.encode());
  }

  @Test
  @DisplayName("every timestamp in the document's schemas has the API's format, seconds and Z")
  void timestampsHaveTheirPattern() {
    Pattern pattern = Pattern.compile(ApiContract.document().getJsonObject("components").getJsonObject("schemas")
        .getJsonObject("Timestamp").getString("pattern"));
    assertThat(pattern.matcher("2025-12-19T15:12:02Z").matches()).isTrue();
    assertThat(pattern.matcher("2025-12-19T15:12:02.123Z").matches()).isFalse();
    assertThat(pattern.matcher("2025-12-19T15:12:02+01:00").matches()).isFalse();
  }

  @Test
  @DisplayName("GET /openapi.json answers the document as JSON")
  void servesTheDocument() {
    Http.Response answer = http.get("/openapi.json");
    assertThat(answer.status()).isEqualTo(200);
    assertThat(answer.contentType()).isEqualTo("application/json");
    assertThat(answer.json()).isEqualTo(ApiContract.document());
  }

  @Test
  @DisplayName("GET /docs is a Swagger UI page whose scripts, styles and icons all load from the jar, pointed at /openapi.json")
  void servesTheDocsPage() {
    Http.Response page = http.get("/docs");
    assertThat(page.status()).isEqualTo(200);
    assertThat(page.contentType()).startsWith("text/html");
    assertThat(page.raw()).contains("<div id=\"swagger-ui\"></div>").doesNotContain("<script>")
        .doesNotContain("//cdn").doesNotContain("https:");
    List<String> files = new ArrayList<>();
    Matcher reference = Pattern.compile("(?:src|href)=\"([^\"]+)\"").matcher(page.raw());
    while (reference.find()) {
      files.add(reference.group(1));
    }
    assertThat(files).contains("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/swagger-initializer.js");
    for (String file : files) {
      Http.Response answer = http.get(file);
      assertThat(answer.status()).as(file).isEqualTo(200);
      assertThat(answer.raw()).as(file).isNotEmpty();
      String expected = file.endsWith(".js") ? "text/javascript" : file.endsWith(".css") ? "text/css" : "image/png";
      assertThat(answer.contentType()).as(file).startsWith(expected);
    }
    Http.Response initializer = http.get("/docs/swagger-initializer.js");
    assertThat(initializer.raw()).as("our initializer, not the jar's demo").contains("url: \"/openapi.json\"")
        .doesNotContain("petstore");
    assertThat(http.get("/docs/").raw()).as("the directory's page is ours too").isEqualTo(page.raw());
    assertThat(http.get("/docs/index.html").raw()).isEqualTo(page.raw());
  }

  @Test
  @DisplayName("a file /docs lacks is a 404 in the API's error shape, and another method a 405 that allows GET")
  void docsErrors() {
    Http.Response missing = http.get("/docs/no-such-file.js");
    assertThat(missing.status()).isEqualTo(404);
    assertThat(missing.json().fieldNames()).containsExactlyInAnyOrder("status", "message");
    Http.Response post = http.post("/docs/swagger-ui.css", "{}");
    assertThat(post.status()).isEqualTo(405);
    assertThat(post.header("Allow")).isEqualTo("GET");
    assertThat(http.post("/openapi.json", "{}").header("Allow")).isEqualTo("GET");
  }

  /**
   * Every Schema Object of the document by where it is: the named ones, and each "schema" of a
   * parameter, header or media type.
   */
  private static Map<String, JsonObject> schemas(JsonObject document) {
    Map<String, JsonObject> schemas = new TreeMap<>();
    JsonObject named = document.getJsonObject("components").getJsonObject("schemas");
    named.fieldNames().forEach(name -> schemas.put("#/components/schemas/" + name, named.getJsonObject(name)));
    collectSchemas("#", document, schemas);
    return schemas;
  }

  private static void collectSchemas(String where, Object node, Map<String, JsonObject> schemas) {
    if (node instanceof JsonObject object) {
      for (String key : object.fieldNames()) {
        Object value = object.getValue(key);
        if (key.equals("schema") && value instanceof JsonObject schema) {
          schemas.put(where + "/schema", schema);
        } else if (!where.equals("#/components") || !key.equals("schemas")) {
          collectSchemas(where + "/" + key, value, schemas);
        }
      }
    } else if (node instanceof io.vertx.core.json.JsonArray array) {
      for (int i = 0; i < array.size(); i++) {
        collectSchemas(where + "/" + i, array.getValue(i), schemas);
      }
    }
  }

  private static void assertValid(OutputUnit result, String against) {
    assertThat(result.getValid()).as("the document against %s: %s", against, result.toJson().encodePrettily())
        .isTrue();
  }

  private static <T> T await(io.vertx.core.Future<T> future) throws Exception {
    return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }
}
