package dev.tokenlease.lease.routes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tokenlease.lease.bus.CommittedChanges;
import dev.tokenlease.lease.core.PoolChange;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.LongStream;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("The ring of recent changes")
class RecentChangesTest {
  private static CommittedChanges batch(long firstId, int size) {
    List<PoolChange> changes = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      changes.add(new PoolChange(PoolChange.Kind.GRANTED, firstId + i, UUID.randomUUID(), UUID.randomUUID(), 0,
          1000, PoolChange.NO_TIME, null, 0, PoolChange.NO_TIME, 1, null, 0, null, 0));
    }
    return new CommittedChanges(changes, firstId);
  }

  private static List<Long> held(RecentChanges ring) {
    return LongStream.range(ring.start(), ring.next()).mapToObj(id -> ring.get(id).generation()).toList();
  }

  @Test
  @DisplayName("knows nothing until the pool says where ids stand or a batch arrives")
  void unknownAtFirst() {
    RecentChanges ring = new RecentChanges(4);
    assertThat(ring.known()).isFalse();
    ring.startAt(100);
    assertThat(ring.known()).isTrue();
    assertThat(ring.start()).isEqualTo(100);
    assertThat(ring.next()).isEqualTo(100);
    ring.startAt(200);
    assertThat(ring.next()).as("only before anything is known").isEqualTo(100);
  }

  @Test
  @DisplayName("keeps the latest changes by id, the oldest making room")
  void keepsTheLatest() {
    RecentChanges ring = new RecentChanges(4);
    ring.startAt(10);
    ring.append(batch(10, 3));
    assertThat(held(ring)).containsExactly(10L, 11L, 12L);
    ring.append(batch(13, 2));
    assertThat(ring.start()).isEqualTo(11);
    assertThat(ring.next()).isEqualTo(15);
    assertThat(held(ring)).containsExactly(11L, 12L, 13L, 14L);
  }

  @Test
  @DisplayName("of a batch larger than itself, keeps the end")
  void largeBatch() {
    RecentChanges ring = new RecentChanges(4);
    ring.append(batch(50, 10));
    assertThat(held(ring)).containsExactly(56L, 57L, 58L, 59L);
  }

  @Test
  @DisplayName("starts over at a batch that does not follow the last one")
  void gap() {
    RecentChanges ring = new RecentChanges(4);
    ring.append(batch(1, 2));
    ring.append(batch(7, 1));
    assertThat(ring.start()).isEqualTo(7);
    assertThat(held(ring)).containsExactly(7L);
  }

  @Test
  @DisplayName("encodes a change once however often it is sent, and anew once its slot holds another change")
  void encodesOnce() {
    RecentChanges ring = new RecentChanges(2);
    ring.append(batch(1, 2));
    java.util.concurrent.atomic.AtomicInteger encoded = new java.util.concurrent.atomic.AtomicInteger();
    java.util.function.BiFunction<Long, PoolChange, io.vertx.core.buffer.Buffer> encode = (id, change) -> {
      encoded.incrementAndGet();
      return io.vertx.core.buffer.Buffer.buffer(id + ":" + change.generation());
    };
    assertThat(ring.frame(1, encode).toString()).isEqualTo("1:1");
    assertThat(ring.frame(1, encode).toString()).isEqualTo("1:1");
    assertThat(encoded).hasValue(1);
    ring.append(batch(3, 1)); // id 3 takes id 1's slot
    assertThat(ring.frame(3, encode).toString()).isEqualTo("3:3");
    assertThat(encoded).hasValue(2);
  }
}
