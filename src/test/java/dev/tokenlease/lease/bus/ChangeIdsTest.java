package dev.tokenlease.lease.bus;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("Change ids")
class ChangeIdsTest {
  private static final long MAX_SAFE_INTEGER = (1L << 53) - 1;

  @Test
  @DisplayName("start at the writer epoch shifted by 32 bits and go up by one per change, batch after batch")
  void consecutive() {
    ChangeIds ids = new ChangeIds(3);
    assertThat(ids.next()).isEqualTo(3L << 32);
    assertThat(ids.assign(2)).isEqualTo(3L << 32);
    assertThat(ids.assign(5)).isEqualTo((3L << 32) + 2);
    assertThat(ids.next()).isEqualTo((3L << 32) + 7);
    assertThat(ChangeIds.run(ids.next())).isEqualTo(3);
    assertThat(new ChangeIds(4).next()).as("the next run's first id").isGreaterThan(ids.next());
  }

  @Test
  @DisplayName("stay at or below 2^53 - 1 up to the last epoch, and a run that has used its 2^32 ids gives none")
  void bounded() {
    ChangeIds ids = new ChangeIds(ChangeIds.MAX_EPOCH);
    assertThat(ids.assign(Integer.MAX_VALUE)).isEqualTo(ChangeIds.MAX_EPOCH << 32);
    long second = ids.assign(Integer.MAX_VALUE);
    long lastTwo = ids.assign(2);
    assertThat(lastTwo).isEqualTo(second + Integer.MAX_VALUE);
    assertThat(lastTwo + 1).as("the last id of the last epoch").isEqualTo(MAX_SAFE_INTEGER);
    assertThat(ids.assign(1)).isEqualTo(CommittedChanges.NO_IDS);
    assertThat(ids.next()).isEqualTo(CommittedChanges.NO_IDS);

    ChangeIds almost = new ChangeIds(1);
    almost.assign(Integer.MAX_VALUE);
    almost.assign(Integer.MAX_VALUE);
    assertThat(almost.assign(3)).as("a batch that would not fit in the two ids left").isEqualTo(CommittedChanges.NO_IDS);
    assertThat(almost.assign(1)).as("and none after it either, so ids never skip").isEqualTo(CommittedChanges.NO_IDS);
  }

  @Test
  @DisplayName("an epoch beyond what 53 bits can carry gives no ids at all")
  void epochTooLarge() {
    ChangeIds ids = new ChangeIds(ChangeIds.MAX_EPOCH + 1);
    assertThat(ids.next()).isEqualTo(CommittedChanges.NO_IDS);
    assertThat(ids.assign(1)).isEqualTo(CommittedChanges.NO_IDS);
  }
}
