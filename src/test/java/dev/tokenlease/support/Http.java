package dev.tokenlease.support;

import io.vertx.core.json.Json;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/** A small blocking (or async) HTTP client for black-box tests of the running service. */
public final class Http {
  private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
  private final String base;
  private final int port;

  public Http(int port) {
    this.base = "http://127.0.0.1:" + port;
    this.port = port;
  }

  public record Response(int status, java.net.http.HttpHeaders headers, String raw) {
    public JsonObject json() {
      Object value = Json.decodeValue(raw);
      if (value instanceof JsonObject object) {
        return object;
      }
      throw new AssertionError("not a JSON object: " + raw);
    }

    public JsonArray array(String field) {
      return json().getJsonArray(field);
    }

    public String contentType() {
      return headers.firstValue("content-type").orElse("");
    }

    /** The first value of a header, or null. */
    public String header(String name) {
      return headers.firstValue(name).orElse(null);
    }

    @Override
    public String toString() {
      return status + " " + raw;
    }
  }

  public Response get(String path) {
    return send("GET", path, null);
  }

  public Response post(String path, String body) {
    return send("POST", path, body);
  }

  public Response delete(String path) {
    return send("DELETE", path, null);
  }

  public Response send(String method, String path, String body) {
    try {
      return sendAsync(method, path, body).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (java.util.concurrent.ExecutionException e) {
      throw new IllegalStateException(e.getCause());
    }
  }

  public CompletableFuture<Response> sendAsync(String method, String path, String body) {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + path))
        .timeout(Duration.ofSeconds(30))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      request.header("Content-Type", "application/json");
    }
    return client.sendAsync(request.build(), HttpResponse.BodyHandlers.ofString())
        .thenApply(r -> new Response(r.statusCode(), r.headers(), r.body()));
  }

  /**
   * Sends a request with the given headers (name, value, name, value, ...) and body as is; no
   * Content-Type is added.
   */
  public Response request(String method, String path, String body, String... headers) {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + path))
        .timeout(Duration.ofSeconds(30))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    for (int i = 0; i < headers.length; i += 2) {
      request.header(headers[i], headers[i + 1]);
    }
    try {
      HttpResponse<String> r = client.send(request.build(), HttpResponse.BodyHandlers.ofString());
      return new Response(r.statusCode(), r.headers(), r.body());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Sends bytes as they are, for requests no well-behaved client would build (bad escapes, broken
   * request lines), and reads the one response.
   */
  public Response raw(String request) {
    return rawFrom("127.0.0.1", request);
  }

  /** Like {@link #raw} but from the given local (loopback) address, to act as another client IP. */
  public Response rawFrom(String localAddress, String request) {
    try (java.net.Socket socket = new java.net.Socket(java.net.InetAddress.getByName("127.0.0.1"), port,
        java.net.InetAddress.getByName(localAddress), 0)) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
      socket.getOutputStream().flush();
      String text = new String(socket.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      int headerEnd = text.indexOf("\r\n\r\n");
      String[] lines = text.substring(0, headerEnd).split("\r\n");
      java.util.Map<String, java.util.List<String>> headers = new java.util.TreeMap<>(String.CASE_INSENSITIVE_ORDER);
      for (int i = 1; i < lines.length; i++) {
        int colon = lines[i].indexOf(':');
        headers.computeIfAbsent(lines[i].substring(0, colon).trim(), k -> new java.util.ArrayList<>())
            .add(lines[i].substring(colon + 1).trim());
      }
      String body = text.substring(headerEnd + 4);
      String length = headers.containsKey("content-length") ? headers.get("content-length").get(0) : null;
      if (length != null) {
        body = body.substring(0, Integer.parseInt(length));
      }
      return new Response(Integer.parseInt(lines[0].split(" ")[1]),
          java.net.http.HttpHeaders.of(headers, (a, b) -> true), body);
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Activates a token for {@code userId} and returns the reply, failing the test on any non-200. */
  public JsonObject activate(String userId) {
    Response response = post("/api/tokens/activate", new JsonObject().put("user_id", userId).encode());
    if (response.status() != 200) {
      throw new AssertionError("activation failed: " + response);
    }
    return response.json();
  }

}
