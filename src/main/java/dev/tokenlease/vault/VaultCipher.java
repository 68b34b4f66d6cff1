package dev.tokenlease.vault;

import com.google.crypto.tink.Aead;
import com.google.crypto.tink.InsecureSecretKeyAccess;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.RegistryConfiguration;
import com.google.crypto.tink.TinkJsonProtoKeysetFormat;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;

/**
 * Encrypts vault secrets with AES-256-GCM through Google Tink. The master key is a Tink keyset: its
 * primary key encrypts, every key in it decrypts, and each ciphertext starts with the id of the key
 * that made it, so a keyset rotation needs no flag day. Tink draws a fresh random 96-bit nonce for
 * every encryption. The credential id and version are bound in as associated data.
 */
public final class VaultCipher {
  /** A ciphertext and the id of the key that made it (also stored in its own column). */
  public record Sealed(byte[] ciphertext, long keyId) {}

  /** The canary is bound to the nil UUID, which no random (version 4) credential id can equal. */
  private static final UUID CANARY_ID = new UUID(0, 0);
  private static final String CANARY_PURPOSE = "canary";
  private static final String CANARY_TEXT = "token-service vault canary";

  private final Aead aead;
  private final int primaryKeyId;
  private final Set<Long> keyIds = new TreeSet<>();

  private VaultCipher(KeysetHandle keyset) throws GeneralSecurityException {
    this.aead = keyset.getPrimitive(RegistryConfiguration.get(), Aead.class);
    this.primaryKeyId = keyset.getPrimary().getId();
    for (int i = 0; i < keyset.size(); i++) {
      keyIds.add(Integer.toUnsignedLong(keyset.getAt(i).getId()));
    }
  }

  /**
   * Reads a Tink JSON keyset of AES-GCM keys.
   *
   * @throws GeneralSecurityException when it is not a valid AEAD keyset
   */
  public static VaultCipher fromKeysetJson(String json) throws GeneralSecurityException {
    AeadConfig.register();
    return new VaultCipher(TinkJsonProtoKeysetFormat.parseKeyset(json, InsecureSecretKeyAccess.get()));
  }

  /** A new keyset with one AES-256-GCM key, as JSON. */
  public static String newKeysetJson() throws GeneralSecurityException {
    AeadConfig.register();
    return TinkJsonProtoKeysetFormat.serializeKeyset(
        KeysetHandle.generateNew(PredefinedAeadParameters.AES256_GCM), InsecureSecretKeyAccess.get());
  }

  /** The keyset with a new AES-256-GCM key added as primary; older keys stay for decryption. */
  public static String rotateKeysetJson(String json) throws GeneralSecurityException {
    AeadConfig.register();
    KeysetHandle current = TinkJsonProtoKeysetFormat.parseKeyset(json, InsecureSecretKeyAccess.get());
    KeysetHandle rotated = KeysetHandle.newBuilder(current)
        .addEntry(KeysetHandle.generateEntryFromParameters(PredefinedAeadParameters.AES256_GCM).withRandomId().makePrimary())
        .build();
    return TinkJsonProtoKeysetFormat.serializeKeyset(rotated, InsecureSecretKeyAccess.get());
  }

  public Sealed seal(String secret, UUID credentialId, String purpose) throws GeneralSecurityException {
    byte[] ciphertext = aead.encrypt(secret.getBytes(StandardCharsets.UTF_8), associatedData(credentialId, purpose));
    return new Sealed(ciphertext, Integer.toUnsignedLong(primaryKeyId));
  }

  public String open(byte[] ciphertext, UUID credentialId, String purpose) throws GeneralSecurityException {
    return new String(aead.decrypt(ciphertext, associatedData(credentialId, purpose)), StandardCharsets.UTF_8);
  }

  /** The vault's canary sealed under the primary key. */
  public Sealed sealCanary() throws GeneralSecurityException {
    return seal(CANARY_TEXT, CANARY_ID, CANARY_PURPOSE);
  }

  /** Whether this keyset opens a canary: false when it lacks the key, or holds other material under its id. */
  public boolean opensCanary(byte[] ciphertext) {
    try {
      return CANARY_TEXT.equals(open(ciphertext, CANARY_ID, CANARY_PURPOSE));
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  public long primaryKeyId() {
    return Integer.toUnsignedLong(primaryKeyId);
  }

  public boolean hasKey(long keyId) {
    return keyIds.contains(keyId);
  }

  /** Binds a ciphertext to its row and field ("v3" for version 3, "client_secret", …). */
  private static byte[] associatedData(UUID credentialId, String purpose) {
    byte[] label = purpose.getBytes(StandardCharsets.US_ASCII);
    return ByteBuffer.allocate(16 + label.length)
        .putLong(credentialId.getMostSignificantBits())
        .putLong(credentialId.getLeastSignificantBits())
        .put(label)
        .array();
  }
}
