package dev.tokenlease.platform;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.eventbus.MessageCodec;

/**
 * Passes an immutable message object by reference on local sends: no copy, no serialization.
 * It refuses the wire, so these types never leave the JVM; cluster callers use the JSON addresses.
 */
public final class LocalRecordCodec<T> implements MessageCodec<T, T> {
  private final String name;

  private LocalRecordCodec(Class<T> type) {
    this.name = name(type);
  }

  /** The name of {@code type}'s by-reference codec, for {@code DeliveryOptions.setCodecName}. */
  public static String name(Class<?> type) {
    return "local:" + type.getName();
  }

  /**
   * Registers a by-reference codec for {@code type} under {@link #name(Class)} only, for a type whose
   * default codec is another (senders then choose this one per message).
   */
  public static void registerNamed(EventBus bus, Class<?> type) {
    bus.registerCodec(new LocalRecordCodec<>(type));
  }

  public static void registerAll(EventBus bus, Class<?>... types) {
    for (Class<?> type : types) {
      register(bus, type);
    }
  }

  private static <T> void register(EventBus bus, Class<T> type) {
    bus.registerDefaultCodec(type, new LocalRecordCodec<>(type));
  }

  @Override
  public void encodeToWire(Buffer buffer, T message) {
    throw new UnsupportedOperationException(name + " is local only; across the cluster use the JSON addresses (tokens.api.*, tokens.events)");
  }

  @Override
  public T decodeFromWire(int pos, Buffer buffer) {
    throw new UnsupportedOperationException(name + " is local only; across the cluster use the JSON addresses (tokens.api.*, tokens.events)");
  }

  @Override
  public T transform(T message) {
    return message;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public byte systemCodecID() {
    return -1;
  }
}
