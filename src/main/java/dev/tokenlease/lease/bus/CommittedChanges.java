package dev.tokenlease.lease.bus;

import dev.tokenlease.lease.core.PoolChange;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.MessageCodec;
import io.vertx.core.json.JsonObject;
import java.util.List;

/**
 * A committed batch as published on {@code tokens.events}. Subscribers receive the JSON of
 * {@link PoolJson#events}; the JSON is built only when a message is delivered, so publishing costs
 * next to nothing while nobody follows the changes (building it for every batch was an eighth of
 * the service's CPU under load).
 */
public record CommittedChanges(List<PoolChange> changes) {

  static void registerCodec(EventBus bus) {
    bus.registerDefaultCodec(CommittedChanges.class, new Codec());
  }

  /** Local delivery builds the JSON; the wire carries it as a length-prefixed JSON object. */
  private static final class Codec implements MessageCodec<CommittedChanges, JsonObject> {
    @Override
    public void encodeToWire(Buffer buffer, CommittedChanges batch) {
      Buffer json = PoolJson.events(batch.changes()).toBuffer();
      buffer.appendInt(json.length()).appendBuffer(json);
    }

    @Override
    public JsonObject decodeFromWire(int pos, Buffer buffer) {
      int length = buffer.getInt(pos);
      return new JsonObject(buffer.slice(pos + 4, pos + 4 + length));
    }

    @Override
    public JsonObject transform(CommittedChanges batch) {
      return PoolJson.events(batch.changes());
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
