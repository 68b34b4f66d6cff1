package dev.tokenlease;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The layout the code keeps: a package per capability (lease, m2m, vault) and a platform that
 * depends on none of them; no cycle between packages at any depth; the pool core in plain Java.
 * Only the composition root ({@code dev.tokenlease} itself) sees everything.
 */
@DisplayName("Architecture")
class ArchitectureTest {
  private static JavaClasses main;

  @BeforeAll
  static void importMainClasses() {
    main = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
        .importPackages("dev.tokenlease");
  }

  @Test
  @DisplayName("no cycle between the top-level packages")
  void topLevelFreeOfCycles() {
    slices().matching("dev.tokenlease.(*)..").should().beFreeOfCycles().check(main);
  }

  @Test
  @DisplayName("no cycle between the packages inside a capability or the platform")
  void subpackagesFreeOfCycles() {
    slices().matching("dev.tokenlease.(*).(*)..").should().beFreeOfCycles().check(main);
  }

  @Test
  @DisplayName("the platform depends on no capability")
  void platformStandsAlone() {
    noClasses().that().resideInAPackage("dev.tokenlease.platform..")
        .should().dependOnClassesThat().resideInAnyPackage("dev.tokenlease.lease..", "dev.tokenlease.m2m..",
            "dev.tokenlease.vault..")
        .check(main);
  }

  @Test
  @DisplayName("the pool core imports no Vert.x")
  void coreIsPlainJava() {
    noClasses().that().resideInAPackage("dev.tokenlease.lease.core..")
        .should().dependOnClassesThat().resideInAPackage("io.vertx..")
        .check(main);
  }
}
