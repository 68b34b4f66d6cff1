package dev.tokenlease.support;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.abort;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * Where the dashboard's tests find Node.js, playwright-core and Chromium (.ci/run installs them).
 * A developer without them gets the test skipped with a message saying what to install; with
 * {@code TOKENS_E2E_REQUIRED=1} (as CI sets) a missing tool fails the test instead.
 */
public final class BrowserTools {
  /** playwright-core is installed here by .ci/run unless TOKENS_E2E_NODE_MODULES says otherwise. */
  private static final Path DEFAULT_NODE_MODULES =
      Path.of(System.getProperty("user.home"), ".cache", "token-service-e2e", "node_modules");

  private BrowserTools() {}

  /** The node executable on the PATH. */
  public static Path node() {
    String path = System.getenv().getOrDefault("PATH", "");
    return Stream.of(path.split(java.io.File.pathSeparator))
        .map(folder -> Path.of(folder, "node"))
        .filter(Files::isExecutable)
        .findFirst()
        .orElseGet(() -> missing("Node.js (node) is not on the PATH; install it (apt-get install nodejs) or run .ci/run"));
  }

  /** The node_modules folder that holds playwright-core. */
  public static Path nodeModules() {
    String configured = System.getenv("TOKENS_E2E_NODE_MODULES");
    Path folder = configured == null || configured.isBlank() ? DEFAULT_NODE_MODULES : Path.of(configured);
    if (!Files.exists(folder.resolve("playwright-core").resolve("package.json"))) {
      return missing("playwright-core is not in " + folder + "; install it with: npm install --prefix "
          + folder.getParent() + " playwright-core (or run .ci/run)");
    }
    return folder;
  }

  /** Debian's Chromium, or the browser CHROMIUM names. */
  public static Path chromium() {
    String configured = System.getenv("CHROMIUM");
    Path browser = Path.of(configured == null || configured.isBlank() ? "/usr/bin/chromium" : configured);
    if (!Files.isExecutable(browser)) {
      return missing(browser + " is missing; install it with: apt-get install chromium (or run .ci/run)");
    }
    return browser;
  }

  /** Copies {@code files} into a fresh folder under target/ marked as ES modules, for node to run. */
  public static Path moduleFolder(String name, Path... files) throws IOException {
    Path folder = Path.of("target", name);
    if (Files.exists(folder)) {
      try (Stream<Path> old = Files.walk(folder)) {
        old.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
      }
    }
    Files.createDirectories(folder);
    Files.writeString(folder.resolve("package.json"), "{\"type\": \"module\"}\n");
    for (Path file : files) {
      Files.copy(file, folder.resolve(file.getFileName()));
    }
    return folder;
  }

  private static <T> T missing(String why) {
    if ("1".equals(System.getenv("TOKENS_E2E_REQUIRED"))) {
      fail(why + " (TOKENS_E2E_REQUIRED=1: the dashboard's tests must run)");
    }
    abort("Skipped: " + why);
    return null;
  }
}
