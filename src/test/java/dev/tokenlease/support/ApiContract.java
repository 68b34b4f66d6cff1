package dev.tokenlease.support;

import dev.tokenlease.platform.http.ApiDocs;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.Json;
import io.vertx.core.json.JsonObject;
import io.vertx.openapi.contract.MediaType;
import io.vertx.openapi.contract.OpenAPIContract;
import io.vertx.openapi.validation.ResponseParameter;
import io.vertx.openapi.validation.ResponseValidator;
import io.vertx.openapi.validation.SchemaValidationException;
import io.vertx.openapi.validation.ValidatableResponse;
import io.vertx.openapi.validation.impl.RequestParameterImpl;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * The service's OpenAPI document as the tests read it: the JSON resource the service serves, the
 * contract vertx-openapi builds from it, and the check of one answer against the operation and
 * status the document gives for it.
 */
public final class ApiContract {
  private static final Pattern TEMPLATE = Pattern.compile("\\{[^/}]+}");
  private static final String[] METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};

  private final JsonObject document;
  private final OpenAPIContract contract;
  private final ResponseValidator validator;

  private ApiContract(JsonObject document, OpenAPIContract contract, ResponseValidator validator) {
    this.document = document;
    this.contract = contract;
    this.validator = validator;
  }

  /** The document exactly as the service serves it. */
  public static JsonObject document() {
    try (var in = ApiContract.class.getClassLoader().getResourceAsStream(ApiDocs.DOCUMENT)) {
      if (in == null) {
        throw new IllegalStateException(ApiDocs.DOCUMENT + " is not on the classpath");
      }
      return new JsonObject(Buffer.buffer(in.readAllBytes()));
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Builds the contract (blocking the caller); fails if vertx-openapi refuses the document. */
  public static ApiContract load(Vertx vertx) {
    JsonObject document = document();
    OpenAPIContract contract = await(OpenAPIContract.from(vertx, modeled(document)));
    return new ApiContract(document, contract, ResponseValidator.create(vertx, contract));
  }

  /**
   * The document without the media types vertx-openapi 5.0 does not model (it refuses a contract
   * that has any): the OAuth endpoints' form bodies and the HTML, script, style and image files of
   * /docs. Everything else, JSON bodies, parameters, headers and every $ref, is kept as it is. A
   * request body or response left with no media type loses its {@code content}.
   */
  public static JsonObject modeled(JsonObject document) {
    JsonObject copy = document.copy();
    for (JsonObject item : operations(copy).values()) {
      JsonObject body = item.getJsonObject("requestBody");
      if (body != null && dropUnmodeled(body)) {
        item.remove("requestBody");
      }
      JsonObject responses = item.getJsonObject("responses");
      for (String status : responses.fieldNames()) {
        JsonObject response = responses.getJsonObject(status);
        if (response.containsKey("content") && dropUnmodeled(response)) {
          response.remove("content");
        }
      }
    }
    return copy;
  }

  /** Removes unmodeled media types from {@code holder.content}; true when none is left. */
  private static boolean dropUnmodeled(JsonObject holder) {
    JsonObject content = holder.getJsonObject("content");
    for (String type : new TreeSet<>(content.fieldNames())) {
      if (!MediaType.isMediaTypeSupported(type)) {
        content.remove(type);
      }
    }
    return content.isEmpty();
  }

  /** Every operation of a document by "METHOD /path" (upper-case method, OpenAPI path template). */
  public static Map<String, JsonObject> operations(JsonObject document) {
    Map<String, JsonObject> operations = new TreeMap<>();
    JsonObject paths = document.getJsonObject("paths");
    for (String path : paths.fieldNames()) {
      JsonObject item = paths.getJsonObject(path);
      for (String method : METHODS) {
        if (item.containsKey(method)) {
          operations.put(method.toUpperCase(java.util.Locale.ROOT) + " " + path, item.getJsonObject(method));
        }
      }
    }
    return operations;
  }

  public JsonObject raw() {
    return document;
  }

  public OpenAPIContract contract() {
    return contract;
  }

  /**
   * The document's path template for a request path: an exact path first, then a template whose
   * {parameters} each stand for one segment (as OpenAPI matches them).
   */
  public String template(String method, String path) {
    Map<String, JsonObject> operations = operations(document);
    if (operations.containsKey(method + " " + path)) {
      return path;
    }
    for (String key : operations.keySet()) {
      String template = key.substring(key.indexOf(' ') + 1);
      if (key.startsWith(method + " ")
          && path.matches(TEMPLATE.matcher(Pattern.quote(template)).replaceAll("\\\\E[^/]+\\\\Q"))) {
        return template;
      }
    }
    throw new AssertionError("The document has no operation for " + method + " " + path);
  }

  /**
   * Checks one answer of the service against the document: its status is declared for the
   * operation, and its body (by its media type) and declared headers match the response's schemas.
   *
   * @return the operation's "METHOD /template" and status, for reports of what was checked
   */
  public String check(String method, String uri, Http.Response answer) {
    String path = uri.contains("?") ? uri.substring(0, uri.indexOf('?')) : uri;
    String template = template(method, path);
    JsonObject operation = operations(document).get(method + " " + template);
    String seen = method + " " + template + " " + answer.status();
    JsonObject responses = operation.getJsonObject("responses");
    if (!responses.containsKey(Integer.toString(answer.status()))) {
      throw new AssertionError(method + " " + uri + " answered " + answer.status() + ", a status the document does not "
          + "declare for " + method + " " + template + " (it declares " + responses.fieldNames() + "): " + answer.raw());
    }
    String operationId = operation.getString("operationId");
    try {
      await(validator.validate(new Answer(answer), operationId));
    } catch (SchemaValidationException e) {
      throw new AssertionError(seen + ": the answer does not match the document: " + e.getMessage() + " "
          + e.getOutputUnit().toJson().encode() + "\nanswer: " + answer.raw(), e);
    } catch (RuntimeException e) {
      throw new AssertionError(seen + ": the answer does not match the document: " + e.getMessage()
          + "\nanswer: " + answer.raw(), e);
    }
    return seen;
  }

  /**
   * An answer as vertx-openapi's response validator reads it. Its own factory lower-cases header
   * names but then looks them up as the document spells them; here the lookup ignores case, as HTTP
   * does. The validator reads a header value as JSON where it can and as a bare string otherwise,
   * which fails for a string with quotes in it (the WWW-Authenticate challenges): such a value is
   * handed over as a JSON string, so it arrives as the text it is.
   */
  private static final class Answer implements ValidatableResponse {
    private final Http.Response response;
    private final Map<String, ResponseParameter> headers = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);

    Answer(Http.Response response) {
      this.response = response;
      response.headers().map().forEach((name, values) -> {
        String value = values.get(0);
        headers.put(name, new RequestParameterImpl(value.contains("\"") ? Json.encode(value) : value));
      });
    }

    @Override
    public Map<String, ResponseParameter> getHeaders() {
      return headers;
    }

    @Override
    public ResponseParameter getBody() {
      return new RequestParameterImpl(response.raw().isEmpty() ? null : Buffer.buffer(response.raw()));
    }

    @Override
    public String getContentType() {
      String type = response.contentType();
      return type.isEmpty() ? null : type.split(";", 2)[0].trim();
    }

    @Override
    public int getStatusCode() {
      return response.status();
    }
  }

  private static <T> T await(Future<T> future) {
    try {
      return future.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException cause) {
        throw cause;
      }
      throw new IllegalStateException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new IllegalStateException("vertx-openapi did not answer within 30 s", e);
    }
  }
}
