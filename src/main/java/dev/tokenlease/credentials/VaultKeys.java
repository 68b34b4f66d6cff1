package dev.tokenlease.credentials;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;

/**
 * Makes and rotates vault master keysets:
 * {@code java -cp target/token-service.jar dev.tokenlease.credentials.VaultKeys new > vault-keyset.json}
 * and {@code ... VaultKeys rotate < vault-keyset.json > vault-keyset-next.json}. The output is the
 * keyset itself: keep it as secret as the credentials it protects.
 */
public final class VaultKeys {
  private VaultKeys() {}

  public static void main(String[] args) throws GeneralSecurityException, IOException {
    String command = args.length == 0 ? "" : args[0];
    String keyset;
    if ("new".equals(command)) {
      keyset = VaultCipher.newKeysetJson();
    } else if ("rotate".equals(command)) {
      keyset = VaultCipher.rotateKeysetJson(new String(System.in.readAllBytes(), StandardCharsets.UTF_8));
    } else {
      System.err.println("usage: VaultKeys new | VaultKeys rotate < keyset.json");
      System.exit(2);
      return;
    }
    System.out.println(keyset);
  }
}
