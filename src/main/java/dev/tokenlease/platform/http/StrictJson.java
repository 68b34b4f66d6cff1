package dev.tokenlease.platform.http;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenlease.platform.ApiException;
import dev.tokenlease.platform.ErrorCode;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.util.Map;

/**
 * Request bodies parsed as strict JSON (RFC 8259): no comments, no duplicate keys (which reader wins
 * would be a guess), nothing after the value. Vert.x's own decoder accepts comments and keeps the
 * last duplicate.
 */
final class StrictJson {
  private static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
      .build())
      .disable(JsonParser.Feature.ALLOW_COMMENTS)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private StrictJson() {}

  /** The body as a JSON object, or a 400 saying why it is not one. */
  static JsonObject object(Buffer body) {
    Object value;
    try {
      value = MAPPER.readValue(body.getBytes(), Object.class);
    } catch (JsonProcessingException e) {
      throw new ApiException(ErrorCode.BAD_REQUEST, "Request body must be valid JSON.");
    } catch (IOException e) {
      throw new ApiException(ErrorCode.BAD_REQUEST, "Request body must be valid JSON.");
    }
    if (value instanceof Map<?, ?> map) {
      @SuppressWarnings("unchecked")
      Map<String, Object> fields = (Map<String, Object>) map;
      return new JsonObject(fields);
    }
    throw new ApiException(ErrorCode.BAD_REQUEST, "Request body must be a JSON object.");
  }
}
