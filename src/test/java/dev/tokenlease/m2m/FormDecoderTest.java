package dev.tokenlease.m2m;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("FormDecoder")
class FormDecoderTest {
  @Test
  @DisplayName("decodes pairs in order, '+' as a space and escapes as UTF-8")
  void decodes() {
    Map<String, List<String>> form = FormDecoder.decode("grant_type=client_credentials&scope=a+b&name=%C3%A9t%C3%A9", 8);
    assertThat(form).containsExactly(Map.entry("grant_type", List.of("client_credentials")),
        Map.entry("scope", List.of("a b")), Map.entry("name", List.of("été")));
  }

  @Test
  @DisplayName("';' and '#' are ordinary characters, only '&' separates")
  void separators() {
    assertThat(FormDecoder.decode("scope=a;b&client_secret=x#y", 8))
        .containsEntry("scope", List.of("a;b")).containsEntry("client_secret", List.of("x#y")).hasSize(2);
  }

  @Test
  @DisplayName("keeps every value of a repeated name, and a name without '=' has an empty value")
  void repeated() {
    assertThat(FormDecoder.decode("a=1&a=2&flag&&", 8))
        .containsExactly(Map.entry("a", List.of("1", "2")), Map.entry("flag", List.of("")));
  }

  @Test
  @DisplayName("refuses a malformed escape")
  void malformed() {
    for (String text : List.of("a=%", "a=%G1", "a=%4", "%zz=1")) {
      assertThatThrownBy(() -> FormDecoder.decode(text, 8)).as(text)
          .isInstanceOf(FormDecoder.Malformed.class).hasMessage("Malformed percent-encoding");
    }
  }

  @Test
  @DisplayName("refuses a parameter without a name and a leading '?', which Netty would read as something else")
  void nameless() {
    for (String text : List.of("=client_secret", "a=1&=b", "?grant_type=client_credentials")) {
      assertThatThrownBy(() -> FormDecoder.decode(text, 8)).as(text)
          .isInstanceOf(FormDecoder.Malformed.class).hasMessage("A parameter without a name");
    }
    assertThat(FormDecoder.decode("a==b&c=?", 8)).containsEntry("a", List.of("=b")).containsEntry("c", List.of("?"));
  }

  @Test
  @DisplayName("refuses parameters beyond the limit instead of dropping them")
  void limit() {
    assertThat(FormDecoder.decode("a=1&b=2&c=3", 3)).hasSize(3);
    assertThatThrownBy(() -> FormDecoder.decode("a=1&b=2&c=3&d=4", 3))
        .isInstanceOf(FormDecoder.Malformed.class).hasMessage("More than 3 parameters");
    assertThatThrownBy(() -> FormDecoder.decode("a=1&a=2&a=3&a=4", 3)).isInstanceOf(FormDecoder.Malformed.class);
  }

  @Test
  @DisplayName("nothing to decode is no parameters")
  void empty() {
    assertThat(FormDecoder.decode(null, 3)).isEmpty();
    assertThat(FormDecoder.decode("", 3)).isEmpty();
  }
}
