package dev.tokenlease.m2m;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;

/**
 * Client secrets and access tokens: 256 random bits, base64url without padding (43 characters).
 * Only their SHA-256 hashes are stored. A plain hash suffices because the values are random and
 * long (nothing to guess from a dictionary); comparisons of hashes are constant-time.
 */
public final class Secrets {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Base64.Encoder ENCODER = Base64.getUrlEncoder().withoutPadding();

  private Secrets() {}

  /** A fresh 256-bit random value, printable. */
  public static String generate() {
    byte[] bytes = new byte[32];
    RANDOM.nextBytes(bytes);
    return ENCODER.encodeToString(bytes);
  }

  /** A fresh random identifier of 128 bits with a readable prefix. */
  static String identifier(String prefix) {
    byte[] bytes = new byte[16];
    RANDOM.nextBytes(bytes);
    return prefix + HexFormat.of().formatHex(bytes);
  }

  public static byte[] hash(String value) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(value.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every Java platform", e);
    }
  }

  public static String hex(byte[] hash) {
    return HexFormat.of().formatHex(hash);
  }

  /** Whether {@code presented} hashes to {@code stored}, in time independent of where they differ. */
  static boolean matches(byte[] stored, String presented) {
    return MessageDigest.isEqual(stored, hash(presented));
  }
}
