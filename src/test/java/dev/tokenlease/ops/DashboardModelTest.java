package dev.tokenlease.ops;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.support.BrowserTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The dashboard's page logic (model.js, and charts.js's pure part), unit-tested by node's test runner. */
class DashboardModelTest {
  private static final Logger LOG = LoggerFactory.getLogger(DashboardModelTest.class);
  private static final Path PAGE = Path.of("src", "main", "resources", "dashboard");

  @Test
  @DisplayName("node --test passes every test of src/test/dashboard/model.test.js")
  void pageLogic() throws Exception {
    Path node = BrowserTools.node();
    Path folder = BrowserTools.moduleFolder("dashboard-model-test", PAGE.resolve("model.js"), PAGE.resolve("charts.js"),
        Path.of("src", "test", "dashboard", "model.test.js"));
    Process process = new ProcessBuilder(node.toString(), "--test", "model.test.js")
        .directory(folder.toFile()).redirectErrorStream(true).start();
    process.getOutputStream().close();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("node --test ended").isTrue();
    LOG.info("node --test model.test.js:\n{}", output.lines().filter(line -> line.startsWith("# ") && !line.startsWith("# Subtest")).toList());
    assertThat(process.exitValue()).as(output).isZero();
    assertThat(output).contains("# fail 0").doesNotContain("# pass 0");
  }
}
