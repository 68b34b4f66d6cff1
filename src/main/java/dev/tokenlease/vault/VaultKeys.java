package dev.tokenlease.vault;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;

/**
 * Makes and rotates vault master keysets:
 * {@code java -cp target/token-service.jar dev.tokenlease.vault.VaultKeys new --out PATH} and
 * {@code ... VaultKeys rotate --out NEXT < CURRENT}. The keyset is as secret as the credentials it
 * protects, so {@code --out} writes a new file readable by its owner only; without it the keyset goes
 * to standard output, with a warning. This is a command-line tool: it speaks on stdout and stderr.
 */
public final class VaultKeys {
  private static final String USAGE = "usage: VaultKeys new [--out PATH] | VaultKeys rotate [--out PATH] < keyset.json";

  private VaultKeys() {}

  public static void main(String[] args) throws GeneralSecurityException, IOException {
    String command = args.length == 0 ? "" : args[0];
    Path out = null;
    if (args.length == 3 && "--out".equals(args[1])) {
      out = Path.of(args[2]);
    } else if (args.length != 1) {
      command = "";
    }
    String keyset;
    if ("new".equals(command)) {
      keyset = VaultCipher.newKeysetJson();
    } else if ("rotate".equals(command)) {
      keyset = VaultCipher.rotateKeysetJson(new String(System.in.readAllBytes(), StandardCharsets.UTF_8));
    } else {
      System.err.println(USAGE);
      System.exit(2);
      return;
    }
    if (out == null) {
      System.err.println("warning: the keyset is secret; with --out PATH it is written to a file only you can read");
      System.out.println(keyset);
      return;
    }
    try {
      writePrivately(out, keyset + "\n");
    } catch (FileAlreadyExistsException e) {
      System.err.println(out + " exists already; keysets are never overwritten, choose another path");
      System.exit(2);
      return;
    }
    System.err.println("wrote " + out + " (mode 0600); start the service with TOKENS_VAULT_KEYSET_FILE=" + out);
  }

  /** Creates {@code file} (never replacing one) with owner-only permissions from the start. */
  static void writePrivately(Path file, String content) throws IOException {
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.writeString(file, content, StandardCharsets.UTF_8, StandardOpenOption.TRUNCATE_EXISTING);
  }
}
