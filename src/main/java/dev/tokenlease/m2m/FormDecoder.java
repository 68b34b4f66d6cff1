package dev.tokenlease.m2m;

import io.netty.handler.codec.http.QueryStringDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * application/x-www-form-urlencoded, exactly, on Netty's decoder: only {@code &} separates
 * parameters ({@code ;} is an ordinary character, as in scope values; so is {@code #}, which the
 * decoder would otherwise take for a fragment), {@code +} is a space, a malformed escape is an
 * error, and so is a parameter beyond the limit (the decoder drops those; here they are refused,
 * never ignored). Used for OAuth request bodies and the M2M admin API's query strings.
 */
final class FormDecoder {
  /** Why a form or query string was refused. */
  static final class Malformed extends RuntimeException {
    Malformed(String reason) {
      super(reason, null, false, false);
    }
  }

  /** A pair that starts with '=' (no name), or a leading '?'. */
  private static final java.util.regex.Pattern NAMELESS = java.util.regex.Pattern.compile("(^|&)=|^\\?");

  private FormDecoder() {}

  /** Parameters in order of first appearance, each with every value given. */
  static Map<String, List<String>> decode(String text, int maxParams) {
    if (text == null || text.isEmpty()) {
      return Map.of();
    }
    if (NAMELESS.matcher(text).find()) {
      // Netty would take "=x" for a parameter named x, and drop a leading '?' as if it ended a path.
      throw new Malformed("A parameter without a name");
    }
    Map<String, List<String>> params;
    try {
      params = QueryStringDecoder.builder().hasPath(false).semicolonIsNormalChar(true).maxParams(maxParams + 1)
          .charset(StandardCharsets.UTF_8).build(text.replace("#", "%23")).parameters();
    } catch (IllegalArgumentException e) {
      throw new Malformed("Malformed percent-encoding");
    }
    if (params.values().stream().mapToInt(List::size).sum() > maxParams) {
      throw new Malformed("More than " + maxParams + " parameters");
    }
    return params;
  }
}
