package dev.tokenlease.vault;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@DisplayName("VaultKeys")
class VaultKeysTest {
  @Test
  @DisplayName("writes a keyset to a new file that only its owner can read, and never overwrites one")
  void writesPrivately(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("keys").resolve("vault-keyset.json");
    VaultKeys.writePrivately(file, VaultCipher.newKeysetJson());
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
    assertThat(VaultCipher.fromKeysetJson(Files.readString(file))).isNotNull();
    String before = Files.readString(file);
    assertThatThrownBy(() -> VaultKeys.writePrivately(file, "other")).isInstanceOf(FileAlreadyExistsException.class);
    assertThat(Files.readString(file)).isEqualTo(before);
  }
}
