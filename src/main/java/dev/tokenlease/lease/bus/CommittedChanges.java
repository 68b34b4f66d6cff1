package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.PoolChange;
import dev.tokenlease.platform.LocalRecordCodec;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.MessageCodec;
import io.vertx.core.json.JsonObject;
import java.util.List;

/**
 * A committed batch as published on {@code tokens.events}. Subscribers receive the JSON of
 * {@link PoolJson#events}; the JSON is built only when a message is delivered, so publishing costs
 * next to nothing while nobody follows the changes (building it for every batch was an eighth of
 * the service's CPU under load). Vert.x builds it on the publisher's thread, the pool's event loop,
 * once per local consumer.
 *
 * <p>The same batch goes by reference to {@link PoolAddresses#COMMITTED} for the live streams of
 * this process, which build their JSON on their own event loops, never on the pool's.
 *
 * @param firstId the id of the first change (see {@link ChangeIds}); the others follow one by one.
 *     {@link #NO_IDS} when this run has none to give.
 */
public record CommittedChanges(List<PoolChange> changes, long firstId) implements java.io.Serializable {
  /** The changes of the batch carry no ids. */
  public static final long NO_IDS = -1;
  /** The codec that hands the batch over as it is (no copy, no JSON: it is immutable), to local consumers only. */
  static final String BY_REFERENCE = LocalRecordCodec.name(CommittedChanges.class);

  static void registerCodec(EventBus bus) {
    bus.registerDefaultCodec(CommittedChanges.class, new Codec());
    LocalRecordCodec.registerNamed(bus, CommittedChanges.class);
  }

  /** Local delivery builds the JSON; the wire carries it as a length-prefixed JSON object. */
  private static final class Codec implements MessageCodec<CommittedChanges, JsonObject> {
    @Override
    public void encodeToWire(Buffer buffer, CommittedChanges batch) {
      Buffer json = PoolJson.events(batch.changes(), batch.firstId()).toBuffer();
      buffer.appendInt(json.length()).appendBuffer(json);
    }

    @Override
    public JsonObject decodeFromWire(int pos, Buffer buffer) {
      int length = buffer.getInt(pos);
      return new JsonObject(buffer.slice(pos + 4, pos + 4 + length));
    }

    @Override
    public JsonObject transform(CommittedChanges batch) {
      return PoolJson.events(batch.changes(), batch.firstId());
    }

    @Override
    public String name() {
      return "tokens.committed-changes";
    }

    @Override
    public byte systemCodecID() {
      return -1;
    }
  }
}
