package dev.tokenlease.ops;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tokenlease.platform.config.AppConfig;
import dev.tokenlease.platform.config.ConfigException;
import dev.tokenlease.support.FreshDatabase;
import dev.tokenlease.support.RunningService;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SelfSignedCertificate;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("TLS: TOKENS_TLS_CERT_FILE and TOKENS_TLS_KEY_FILE")
class TlsTest extends FreshDatabase {
  private record Answer(int status, HttpVersion version, JsonObject body) {}

  private static Answer call(Vertx vertx, int port, HttpVersion version, HttpMethod method, String path, String body)
      throws Exception {
    HttpClient client = vertx.createHttpClient(new HttpClientOptions().setSsl(true).setTrustAll(true).setVerifyHost(false)
        .setUseAlpn(true).setProtocolVersion(version));
    try {
      RequestOptions options = new RequestOptions().setMethod(method).setHost("localhost").setPort(port).setURI(path)
          .putHeader("content-type", "application/json");
      HttpClientResponse[] response = new HttpClientResponse[1];
      Buffer answer = client.request(options)
          .compose(request -> body == null ? request.send() : request.send(body))
          .compose(r -> {
            response[0] = r;
            return r.body();
          })
          .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      return new Answer(response[0].statusCode(), response[0].version(), answer.toJsonObject());
    } finally {
      client.close();
    }
  }

  @Test
  @DisplayName("the listener speaks HTTPS; ALPN negotiates HTTP/2, and HTTP/1.1 still works")
  void https() throws Exception {
    SelfSignedCertificate certificate = SelfSignedCertificate.create("localhost");
    RunningService service = startService(new JsonObject()
        .put(AppConfig.TLS_CERT_FILE, certificate.certificatePath()).put(AppConfig.TLS_KEY_FILE, certificate.privateKeyPath()));
    Vertx vertx = Vertx.vertx();
    try {
      Answer h2 = call(vertx, service.port(), HttpVersion.HTTP_2, HttpMethod.POST, "/api/tokens/activate",
          new JsonObject().put("user_id", UUID.randomUUID().toString()).encode());
      assertThat(h2.status()).isEqualTo(200);
      assertThat(h2.version()).isEqualTo(HttpVersion.HTTP_2);
      assertThat(h2.body().getString("token_id")).isNotNull();
      Answer h1 = call(vertx, service.port(), HttpVersion.HTTP_1_1, HttpMethod.GET, "/api/health", null);
      assertThat(h1.status()).isEqualTo(200);
      assertThat(h1.version()).isEqualTo(HttpVersion.HTTP_1_1);
      Answer missing = call(vertx, service.port(), HttpVersion.HTTP_2, HttpMethod.GET, "/api/tokens/" + UUID.randomUUID(), null);
      assertThat(missing.status()).isEqualTo(404);
      assertThat(missing.body().getString("message")).isEqualTo("Token not found");
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      certificate.delete();
    }
  }

  @Test
  @DisplayName("a missing, unreadable or non-PEM file, or only one of the two, stops start-up with one line naming the setting")
  void badFiles() throws Exception {
    SelfSignedCertificate certificate = SelfSignedCertificate.create("localhost");
    Path notPem = Files.writeString(Files.createTempFile("not-pem", ".txt"), "hello");
    try {
      assertThatThrownBy(() -> RunningService.config(database, new JsonObject()
          .put(AppConfig.TLS_CERT_FILE, "/nonexistent/cert.pem").put(AppConfig.TLS_KEY_FILE, certificate.privateKeyPath())))
          .isInstanceOf(ConfigException.class)
          .hasMessage("TOKENS_TLS_CERT_FILE: cannot read '/nonexistent/cert.pem' (NoSuchFileException)");
      assertThatThrownBy(() -> RunningService.config(database, new JsonObject()
          .put(AppConfig.TLS_CERT_FILE, certificate.certificatePath()).put(AppConfig.TLS_KEY_FILE, notPem.toString())))
          .isInstanceOf(ConfigException.class)
          .hasMessage("TOKENS_TLS_KEY_FILE: '" + notPem + "' is not a PEM file with a private key");
      assertThatThrownBy(() -> RunningService.config(database, new JsonObject()
          .put(AppConfig.TLS_CERT_FILE, certificate.certificatePath())))
          .isInstanceOf(ConfigException.class)
          .hasMessage("TOKENS_TLS_KEY_FILE: set it too, or neither: HTTPS needs TOKENS_TLS_CERT_FILE and TOKENS_TLS_KEY_FILE");
      assertThatThrownBy(() -> RunningService.config(database, new JsonObject()
          .put(AppConfig.TLS_CERT_FILE, certificate.privateKeyPath()).put(AppConfig.TLS_KEY_FILE, certificate.privateKeyPath())))
          .isInstanceOf(ConfigException.class)
          .hasMessageContaining("is not a PEM file with a certificate");
    } finally {
      certificate.delete();
      Files.deleteIfExists(notPem);
    }
  }
}
